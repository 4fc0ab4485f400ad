//! Photos of a household (the house front, the inside, the family card): what a photo file must
//! be before a device keeps it, its content address, and the reference a household document holds
//! (`photos.<sha256>`). The device, the server's admission and the upload endpoints all use these
//! rules, so they refuse the same files.
//!
//! A photo is checked by its content, never its name: the magic bytes and a parse of the header
//! (PNG: the IHDR chunk and its CRC; JPEG: the segments up to the frame header). The bytes are
//! kept as given (no re-encoding), and EXIF GPS, when present, is reported to the person at the
//! screen and never written anywhere: a tablet's camera position is not the visit's GPS reading.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Largest photo accepted, in bytes: a phone camera's JPEG of a house or a KK card is 1–5 MB; a
/// larger file is a raw or panorama nobody can upload over 2G (10 MiB at 5 KB/s is 35 minutes).
pub const MAX_PHOTO_BYTES: u64 = 10 * 1024 * 1024;

/// The record keys of a photo reference (`photos.<sha256>.<key>`), written once by the device
/// that attaches the photo and never edited.
pub const PHOTO_KEYS: [&str; 6] = ["kind", "bytes", "mime", "taken_at", "by", "device"];

/// What a photo shows; the ground check asks for these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoKind {
    /// The front of the house.
    HouseFront,
    /// Inside the house (floor, walls: the housing questions).
    HouseInside,
    /// The family card (Kartu Keluarga): as sensitive as the NIKs it shows.
    KkCard,
    /// Anything else the enumerator needs to show.
    Other,
}

impl PhotoKind {
    /// Every kind, in the order they are listed.
    pub const ALL: [PhotoKind; 4] =
        [PhotoKind::HouseFront, PhotoKind::HouseInside, PhotoKind::KkCard, PhotoKind::Other];

    /// The name stored in documents and typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PhotoKind::HouseFront => "house_front",
            PhotoKind::HouseInside => "house_inside",
            PhotoKind::KkCard => "kk_card",
            PhotoKind::Other => "other",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<PhotoKind> {
        PhotoKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for PhotoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file types Pilar keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mime {
    /// `image/jpeg`.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// `image/png`.
    #[serde(rename = "image/png")]
    Png,
}

impl Mime {
    /// The media type, as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Mime::Jpeg => "image/jpeg",
            Mime::Png => "image/png",
        }
    }

    /// The media type named `s`, if Pilar keeps it.
    pub fn parse(s: &str) -> Option<Mime> {
        [Mime::Jpeg, Mime::Png].into_iter().find(|m| m.as_str() == s)
    }

    /// The file name extension an export writes.
    pub fn extension(self) -> &'static str {
        match self {
            Mime::Jpeg => "jpg",
            Mime::Png => "png",
        }
    }
}

/// A photo's content address: the SHA-256 of its bytes, 64 lowercase hex digits. Identical
/// photos have one address, so they are stored and uploaded once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhotoId(String);

impl PhotoId {
    /// The address of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> PhotoId {
        PhotoId(hex::encode(Sha256::digest(bytes)))
    }

    /// The address a finished hash gives.
    pub fn from_digest(digest: &[u8]) -> PhotoId {
        PhotoId(hex::encode(digest))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhotoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A text that is not a photo address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a photo id is the SHA-256 of the photo: 64 lowercase hex digits (0-9, a-f)")]
pub struct BadPhotoId;

impl FromStr for PhotoId {
    type Err = BadPhotoId;
    fn from_str(s: &str) -> Result<PhotoId, BadPhotoId> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(PhotoId(s.to_string()))
        } else {
            Err(BadPhotoId)
        }
    }
}

impl TryFrom<String> for PhotoId {
    type Error = BadPhotoId;
    fn try_from(s: String) -> Result<PhotoId, BadPhotoId> {
        s.parse()
    }
}

impl From<PhotoId> for String {
    fn from(id: PhotoId) -> String {
        id.0
    }
}

/// What a checked photo file is.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    /// JPEG or PNG, from the content.
    pub mime: Mime,
    /// Width in pixels, from the header.
    pub width: u32,
    /// Height in pixels, from the header.
    pub height: u32,
    /// The EXIF GPS position (latitude, longitude) the camera wrote, if any: reported to the
    /// person attaching the photo, never trusted or stored.
    pub exif_gps: Option<(f64, f64)>,
}

/// Why a file is not a photo Pilar keeps. Messages name what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    /// Larger than [`MAX_PHOTO_BYTES`].
    #[error(
        "the photo is {bytes} bytes, more than the limit of {limit} bytes (10 MiB); take it again at a lower resolution (a house or a KK card needs no more than 1-3 MB)"
    )]
    TooLarge {
        /// The file's size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Empty.
    #[error("the file is empty; choose the photo file again")]
    Empty,
    /// Neither JPEG nor PNG by content (whatever its name says).
    #[error(
        "the file is not a JPEG or PNG image by its content ({found}); only JPEG and PNG photos are kept: take the photo with the camera app, or convert it"
    )]
    NotAnImage {
        /// What the first bytes look like, without quoting them.
        found: &'static str,
    },
    /// Starts like a JPEG or PNG but its header does not parse.
    #[error("the {mime} file is damaged ({why}); copy the photo from the camera again")]
    Damaged {
        /// The type the magic bytes claim.
        mime: &'static str,
        /// What is wrong with the header.
        why: String,
    },
}

const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Check a photo file by its content: size, magic bytes, and a parse of its header.
pub fn inspect(bytes: &[u8]) -> Result<Inspected, PhotoError> {
    let size = bytes.len() as u64;
    if size > MAX_PHOTO_BYTES {
        return Err(PhotoError::TooLarge { bytes: size, limit: MAX_PHOTO_BYTES });
    }
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.starts_with(&PNG_MAGIC) {
        return inspect_png(bytes).map_err(|why| PhotoError::Damaged { mime: "PNG", why });
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return inspect_jpeg(bytes).map_err(|why| PhotoError::Damaged { mime: "JPEG", why });
    }
    let found = if bytes.starts_with(b"GIF8") {
        "a GIF image"
    } else if bytes.starts_with(b"%PDF") {
        "a PDF document"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "a HEIC or video file"
    } else if bytes.starts_with(b"RIFF") {
        "a WebP or other RIFF file"
    } else if bytes.iter().take(512).all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        "text"
    } else {
        "unknown binary data"
    };
    Err(PhotoError::NotAnImage { found })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// PNG: the first chunk is IHDR (13 bytes, CRC correct), with a size and a valid colour type.
fn inspect_png(b: &[u8]) -> Result<Inspected, String> {
    let length = be32(b, 8).ok_or("it ends inside the header")?;
    if length != 13 || b.get(12..16) != Some(b"IHDR") {
        return Err("the first chunk is not the image header (IHDR)".into());
    }
    let chunk = b.get(12..12 + 4 + 13).ok_or("it ends inside the image header")?;
    let crc = be32(b, 12 + 4 + 13).ok_or("it ends inside the image header")?;
    if crc32(chunk) != crc {
        return Err("the image header's checksum does not match".into());
    }
    let (width, height) = (be32(b, 16).unwrap_or(0), be32(b, 20).unwrap_or(0));
    if width == 0 || height == 0 || width > 1 << 16 || height > 1 << 16 {
        return Err("the image size in the header is 0 or impossibly large".into());
    }
    let (depth, colour) = (b[24], b[25]);
    let valid = matches!((colour, depth), (0, 1 | 2 | 4 | 8 | 16) | (2 | 4 | 6, 8 | 16) | (3, 1 | 2 | 4 | 8));
    if !valid {
        return Err("the header's colour type and bit depth do not go together".into());
    }
    Ok(Inspected { mime: Mime::Png, width, height, exif_gps: None })
}

/// JPEG: segments from SOI, each with a length that fits, up to a frame header (SOFn) with a size
/// before the scan starts; EXIF GPS read from an APP1 segment on the way.
fn inspect_jpeg(b: &[u8]) -> Result<Inspected, String> {
    let mut at = 2;
    let mut exif_gps = None;
    loop {
        let marker = match (b.get(at), b.get(at + 1)) {
            (Some(0xff), Some(&m)) => m,
            (Some(_), Some(_)) => return Err("a segment does not start with a marker".into()),
            _ => return Err("it ends before the frame header".into()),
        };
        if marker == 0xff {
            at += 1; // fill byte
            continue;
        }
        let length = be16(b, at + 2).ok_or("it ends inside a segment")? as usize;
        if length < 2 || at + 2 + length > b.len() {
            return Err("a segment is longer than the file".into());
        }
        let body = &b[at + 4..at + 2 + length];
        match marker {
            0xe1 if body.starts_with(b"Exif\0\0") => exif_gps = exif_gps.or_else(|| gps_of_tiff(&body[6..])),
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                let height = be16(body, 1).ok_or("the frame header is too short")? as u32;
                let width = be16(body, 3).ok_or("the frame header is too short")? as u32;
                if width == 0 || height == 0 {
                    return Err("the image size in the frame header is 0".into());
                }
                return Ok(Inspected { mime: Mime::Jpeg, width, height, exif_gps });
            }
            0xda => return Err("the scan starts before any frame header".into()),
            0xd9 => return Err("the image ends before any frame header".into()),
            _ => {}
        }
        at += 2 + length;
    }
}

/// The GPS position of an EXIF block (a TIFF structure), if it holds a plausible one.
fn gps_of_tiff(tiff: &[u8]) -> Option<(f64, f64)> {
    let exif = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
    let coordinate = |tag, reference_tag, negative: u8| {
        let field = exif.get_field(tag, exif::In::PRIMARY)?;
        let exif::Value::Rational(parts) = &field.value else { return None };
        let [d, m, s] = parts.get(..3)? else { return None };
        let value = d.to_f64() + m.to_f64() / 60.0 + s.to_f64() / 3600.0;
        let reference = exif.get_field(reference_tag, exif::In::PRIMARY);
        let sign = match reference.map(|f| &f.value) {
            Some(exif::Value::Ascii(v)) if v.first().and_then(|s| s.first()) == Some(&negative) => -1.0,
            _ => 1.0,
        };
        value.is_finite().then_some(sign * value)
    };
    let lat = coordinate(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, b'S')?;
    let lon = coordinate(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, b'W')?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

/// CRC-32 (ISO-HDLC, as PNG uses it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The header naming the SHA-256 (hex) of one upload chunk's bytes: the server appends a chunk only
/// when it matches, so bytes damaged on the way never join an upload.
pub const CHUNK_DIGEST_HEADER: &str = "pilar-chunk-sha256";

/// Upload chunk size a device uses unless told otherwise: 32 KiB is about 6 s at 5 KB/s (2G
/// EDGE on a bad day), so a cut connection wastes at most a few seconds of sending, while the
/// ~0.5 KB of headers and the round trip per chunk cost under 2 % on such a link.
pub const DEFAULT_CHUNK_BYTES: u64 = 32 * 1024;

/// Largest chunk the server takes in one request (it holds one chunk in memory to check its digest).
pub const MAX_CHUNK_BYTES: u64 = 1024 * 1024;

/// What the server holds of one photo of one household (`GET …/photos/{sha256}/status`, and the
/// answer to every chunk `PUT`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadStatus {
    /// The photo.
    pub photo: PhotoId,
    /// Its size, as the household's reference records it.
    pub bytes: u64,
    /// How many bytes from the start the server holds: the next chunk starts here.
    pub held: u64,
    /// Whether the server holds the whole photo, its SHA-256 verified: nothing more to send.
    pub complete: bool,
}

/// One photo of a household, as `GET /v1/households/{id}/photos` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedPhoto {
    /// The photo.
    pub photo: PhotoId,
    /// The household's reference to it.
    pub reference: crate::model::PhotoRef,
    /// Whether the server holds it whole (an upload may still be on its way).
    pub uploaded: bool,
}

/// Synthetic photo files for tests and benchmarks: headers that parse, no picture of anyone.
pub mod synthetic {
    use super::{PNG_MAGIC, crc32};

    /// A PNG of `width`×`height` whose body is `filler` bytes of pattern `seed` (not decodable
    /// pixels: only the header is ever parsed).
    pub fn png(width: u32, height: u32, filler: usize, seed: u8) -> Vec<u8> {
        let mut out = PNG_MAGIC.to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        out.extend(13u32.to_be_bytes());
        out.extend(&ihdr);
        out.extend(crc32(&ihdr).to_be_bytes());
        let mut idat = b"IDAT".to_vec();
        idat.extend((0..filler).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
        out.extend(((idat.len() - 4) as u32).to_be_bytes());
        out.extend(&idat);
        out.extend(crc32(&idat).to_be_bytes());
        let iend = b"IEND";
        out.extend(0u32.to_be_bytes());
        out.extend(iend);
        out.extend(crc32(iend).to_be_bytes());
        out
    }

    /// A JPEG of `width`×`height` with `filler` bytes of scan data of pattern `seed`, and an EXIF
    /// GPS position when `gps` is given.
    pub fn jpeg(width: u16, height: u16, filler: usize, seed: u8, gps: Option<(f64, f64)>) -> Vec<u8> {
        let mut out = vec![0xff, 0xd8];
        let segment = |out: &mut Vec<u8>, marker: u8, body: &[u8]| {
            out.extend([0xff, marker]);
            out.extend(((body.len() + 2) as u16).to_be_bytes());
            out.extend(body);
        };
        segment(&mut out, 0xe0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        if let Some((lat, lon)) = gps {
            segment(&mut out, 0xe1, &exif_gps_block(lat, lon));
        }
        let mut sof = vec![8];
        sof.extend(height.to_be_bytes());
        sof.extend(width.to_be_bytes());
        sof.extend([1, 1, 0x11, 0]);
        segment(&mut out, 0xc0, &sof);
        segment(&mut out, 0xda, &[1, 1, 0, 0, 0x3f, 0]);
        // Scan data never holds 0xff in this filler, so it needs no stuffing.
        out.extend((0..filler).map(|i| ((i as u8).wrapping_mul(37).wrapping_add(seed)) & 0x7f));
        out.extend([0xff, 0xd9]);
        out
    }

    /// `Exif\0\0` + a big-endian TIFF with IFD0 pointing at a GPS IFD of latitude and longitude.
    fn exif_gps_block(lat: f64, lon: f64) -> Vec<u8> {
        let mut t = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
        let base = 6;
        // IFD0: one entry, GPS IFD pointer (0x8825, LONG) -> offset 26.
        t.extend(1u16.to_be_bytes());
        t.extend([0x88, 0x25, 0, 4, 0, 0, 0, 1]);
        t.extend(26u32.to_be_bytes());
        t.extend(0u32.to_be_bytes());
        // GPS IFD at 26: four entries (12 bytes each) + next offset; rationals after it.
        let rationals = 26 + 2 + 4 * 12 + 4;
        t.extend(4u16.to_be_bytes());
        let refs = [(1u16, if lat < 0.0 { b'S' } else { b'N' }), (3u16, if lon < 0.0 { b'W' } else { b'E' })];
        let values = [(2u16, lat.abs()), (4u16, lon.abs())];
        for (i, ((ref_tag, ref_char), (tag, _))) in refs.iter().zip(values.iter()).enumerate() {
            t.extend(ref_tag.to_be_bytes());
            t.extend([0, 2, 0, 0, 0, 2, *ref_char, 0, 0, 0]);
            t.extend(tag.to_be_bytes());
            t.extend([0, 5, 0, 0, 0, 3]);
            t.extend(((rationals + i * 24) as u32).to_be_bytes());
        }
        t.extend(0u32.to_be_bytes());
        for (_, v) in values {
            let degrees = v.trunc();
            let minutes = ((v - degrees) * 60.0).trunc();
            let seconds = ((v - degrees) * 60.0 - minutes) * 60.0;
            for (n, d) in [(degrees as u32, 1u32), (minutes as u32, 1), ((seconds * 1000.0).round() as u32, 1000)] {
                t.extend(n.to_be_bytes());
                t.extend(d.to_be_bytes());
            }
        }
        debug_assert_eq!(t.len() - base, rationals + 48);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_and_png_are_known_by_content_with_their_size() {
        let png = inspect(&synthetic::png(640, 480, 100, 1)).expect("png");
        assert_eq!((png.mime, png.width, png.height, png.exif_gps), (Mime::Png, 640, 480, None));
        let jpeg = inspect(&synthetic::jpeg(800, 600, 100, 1, None)).expect("jpeg");
        assert_eq!((jpeg.mime, jpeg.width, jpeg.height, jpeg.exif_gps), (Mime::Jpeg, 800, 600, None));
    }

    #[test]
    fn exif_gps_is_read_with_its_hemisphere() {
        let jpeg = inspect(&synthetic::jpeg(800, 600, 10, 1, Some((-3.9952, 119.6501)))).expect("jpeg");
        let (lat, lon) = jpeg.exif_gps.expect("gps");
        assert!((lat + 3.9952).abs() < 1e-4 && (lon - 119.6501).abs() < 1e-4, "{lat} {lon}");
    }

    #[test]
    fn other_content_and_damaged_headers_are_refused() {
        assert_eq!(inspect(b"hello, this is not a photo"), Err(PhotoError::NotAnImage { found: "text" }));
        assert!(matches!(inspect(b"GIF89a\x01\0\x01\0"), Err(PhotoError::NotAnImage { found: "a GIF image" })));
        assert_eq!(inspect(b""), Err(PhotoError::Empty));
        let mut png = synthetic::png(10, 10, 10, 1);
        png[17] ^= 1; // width changed under the CRC
        assert!(matches!(inspect(&png), Err(PhotoError::Damaged { mime: "PNG", .. })));
        let jpeg = synthetic::jpeg(10, 10, 10, 1, None);
        assert!(matches!(inspect(&jpeg[..30]), Err(PhotoError::Damaged { mime: "JPEG", .. })));
        assert!(matches!(inspect(&[0xff, 0xd8, 0xff, 0xda, 0, 2]), Err(PhotoError::Damaged { .. })));
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_its_size() {
        let big = vec![0u8; MAX_PHOTO_BYTES as usize + 1];
        let e = inspect(&big).expect_err("too large");
        assert!(e.to_string().contains("10485761 bytes"), "{e}");
    }

    #[test]
    fn photo_ids_are_sha256_hex() {
        let id = PhotoId::of_bytes(b"abc");
        assert_eq!(id.as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(id.as_str().parse::<PhotoId>(), Ok(id.clone()));
        assert!("../etc/passwd".parse::<PhotoId>().is_err());
        assert!(id.as_str().to_uppercase().parse::<PhotoId>().is_err());
    }
}
