//! Registers as the device store keeps them: a plain binary layout (lengths and numbers as
//! LEB128 varints), read and written without serde. Registers are read and written again for
//! every received change; reading them from CBOR through serde was about a quarter of a received
//! change's cost.
//!
//! Layout, after the format byte [`FORMAT`]: actors (count, then each as length and bytes); maps
//! (count, then each as counter and actor); keys (count, then each as map, key text, and its
//! visible operations: count, then each as counter, actor and what it holds); the change hashes
//! (length and bytes); the heads (count, then each). What a key holds is a tag and its value:
//! [`NONE`], [`MAP`] and a map, [`FALSE`], [`TRUE`], [`INT`] and a zigzag varint, [`DECIMAL`]
//! and 8 bytes little-endian, [`TEXT`] and length and UTF-8.
//!
//! Registers stored by earlier versions are CBOR (their first byte is a CBOR map's, never
//! [`FORMAT`]); the store still reads them (`store::households::decode_registers`), and an
//! earlier version that meets this layout reads nothing and takes the slow way, which stores the
//! household whole again.

use super::{Held, Registers};
use crate::value::FieldValue;
use serde_bytes::ByteBuf;

/// The first byte of registers in this layout (a CBOR encoding of registers starts with a map's
/// header, 0xa0 to 0xbf).
pub const FORMAT: u8 = 0x01;

const NONE: u8 = 0;
const MAP: u8 = 1;
const FALSE: u8 = 2;
const TRUE: u8 = 3;
const INT: u8 = 4;
const DECIMAL: u8 = 5;
const TEXT: u8 = 6;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(*first)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    /// A count of items that take at least one byte each: never more than the bytes left, so a
    /// damaged count cannot ask for a huge allocation.
    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok().filter(|n| *n <= self.buf.len())
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        if n > self.buf.len() {
            return None;
        }
        let (bytes, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(bytes)
    }

    fn text(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }
}

impl Registers {
    /// The registers in the store's layout (see the module comment).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.hashes.len() + self.keys.len() * 24);
        out.push(FORMAT);
        put_varint(&mut out, self.actors.len() as u64);
        for actor in &self.actors {
            put_bytes(&mut out, actor);
        }
        put_varint(&mut out, self.objects.len() as u64);
        for (counter, actor) in &self.objects {
            put_varint(&mut out, *counter);
            put_varint(&mut out, u64::from(*actor));
        }
        put_varint(&mut out, self.keys.len() as u64);
        for (obj, key, visible) in &self.keys {
            put_varint(&mut out, u64::from(*obj));
            put_bytes(&mut out, key.as_bytes());
            put_varint(&mut out, visible.len() as u64);
            for (counter, actor, held) in visible {
                put_varint(&mut out, *counter);
                put_varint(&mut out, u64::from(*actor));
                match held {
                    Held::Value(None) => out.push(NONE),
                    Held::Map(obj) => {
                        out.push(MAP);
                        put_varint(&mut out, u64::from(*obj));
                    }
                    Held::Value(Some(FieldValue::Bool(false))) => out.push(FALSE),
                    Held::Value(Some(FieldValue::Bool(true))) => out.push(TRUE),
                    Held::Value(Some(FieldValue::Int(i))) => {
                        out.push(INT);
                        put_varint(&mut out, ((*i << 1) ^ (*i >> 63)) as u64);
                    }
                    Held::Value(Some(FieldValue::Decimal(f))) => {
                        out.push(DECIMAL);
                        out.extend_from_slice(&f.to_le_bytes());
                    }
                    Held::Value(Some(FieldValue::Text(t))) => {
                        out.push(TEXT);
                        put_bytes(&mut out, t.as_bytes());
                    }
                }
            }
        }
        put_bytes(&mut out, &self.hashes);
        put_varint(&mut out, self.heads.len() as u64);
        for head in &self.heads {
            put_varint(&mut out, u64::from(*head));
        }
        out
    }

    /// Registers read back from [`Registers::to_bytes`], or `None` when the bytes are not that
    /// layout or do not hold together (an actor, map or head that is not there, keys out of
    /// order, bytes left over): the store then takes the slow way and writes them again.
    pub fn from_bytes(bytes: &[u8]) -> Option<Registers> {
        let mut r = Reader { buf: bytes };
        if r.byte()? != FORMAT {
            return None;
        }
        let n = r.count()?;
        let mut actors = Vec::with_capacity(n);
        for _ in 0..n {
            actors.push(ByteBuf::from(r.bytes()?.to_vec()));
        }
        let actor_ok = |a: u32| (a as usize) < actors.len();
        let n = r.count()?;
        let mut objects = Vec::with_capacity(n);
        for _ in 0..n {
            let (counter, actor) = (r.varint()?, r.u32()?);
            // The root (0, 0) is there before any actor is.
            if !(actor_ok(actor) || (counter, actor) == (0, 0)) {
                return None;
            }
            objects.push((counter, actor));
        }
        let n = r.count()?;
        let mut keys: Vec<(u32, String, Vec<super::Visible>)> = Vec::with_capacity(n);
        for _ in 0..n {
            let obj = r.u32()?;
            let key = r.text()?;
            if obj as usize >= objects.len()
                || keys.last().is_some_and(|(o, k, _)| (*o, k.as_str()) >= (obj, key.as_str()))
            {
                return None;
            }
            let m = r.count()?;
            let mut visible = Vec::with_capacity(m);
            for _ in 0..m {
                let (counter, actor) = (r.varint()?, r.u32()?);
                if !actor_ok(actor) {
                    return None;
                }
                let held = match r.byte()? {
                    NONE => Held::Value(None),
                    MAP => Held::Map(r.u32().filter(|o| (*o as usize) < objects.len())?),
                    FALSE => Held::Value(Some(FieldValue::Bool(false))),
                    TRUE => Held::Value(Some(FieldValue::Bool(true))),
                    INT => {
                        let z = r.varint()?;
                        Held::Value(Some(FieldValue::Int(((z >> 1) as i64) ^ -((z & 1) as i64))))
                    }
                    DECIMAL => {
                        let mut f = [0u8; 8];
                        for b in &mut f {
                            *b = r.byte()?;
                        }
                        Held::Value(Some(FieldValue::Decimal(f64::from_le_bytes(f))))
                    }
                    TEXT => Held::Value(Some(FieldValue::Text(r.text()?))),
                    _ => return None,
                };
                visible.push((counter, actor, held));
            }
            keys.push((obj, key, visible));
        }
        let hashes = r.bytes()?;
        if hashes.len() % 32 != 0 {
            return None;
        }
        let changes = hashes.len() / 32;
        let n = r.count()?;
        let mut heads = Vec::with_capacity(n);
        for _ in 0..n {
            heads.push(r.u32().filter(|h| (*h as usize) < changes)?);
        }
        if !r.buf.is_empty() {
            return None;
        }
        Some(Registers { actors, objects, keys, hashes: ByteBuf::from(hashes.to_vec()), heads })
    }
}
