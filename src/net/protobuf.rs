//! The protobuf wire format, as much as the gRPC ext_authz front needs: a reader that walks
//! the fields of a message (skipping what it does not know, as protobuf requires) and a writer
//! for the few messages we answer with.
//!
//! Hand-written rather than generated (prost + envoy-types): the front reads eight fields and
//! writes six, and the generated Envoy API is a large compile for that. The reader never
//! panics on hostile input; it is fuzzed with the other network parsers.

/// A field's payload as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// fixed32 and fixed64: never needed by us, only skipped.
    Fixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Iterates over `(field number, value)` of one message.
pub struct Fields<'a> {
    rest: &'a [u8],
}

pub fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.field();
        if item.is_err() {
            // One malformed field spoils the rest: stop after reporting it.
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u32, Value<'a>), Malformed> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        if number == 0 {
            return Err(Malformed);
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            // Groups (3, 4) are proto2-only and absent from Envoy's API.
            _ => return Err(Malformed),
        };
        Ok((number, value))
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for (i, byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        if len > self.rest.len() {
            return Err(Malformed);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }
}

/// A message being written.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    /// A varint field (int32, uint32, int64, enum, bool), omitted when zero as proto3 does.
    pub fn uint(&mut self, number: u32, value: u64) -> &mut Writer {
        if value != 0 {
            self.varint(u64::from(number) << 3);
            self.varint(value);
        }
        self
    }

    /// A length-delimited field (string, bytes, sub-message), written even when empty: an
    /// empty sub-message still says the field is present.
    pub fn bytes(&mut self, number: u32, value: &[u8]) -> &mut Writer {
        self.varint((u64::from(number) << 3) | 2);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
        self
    }

    pub fn message(&mut self, number: u32, message: Writer) -> &mut Writer {
        self.bytes(number, &message.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut inner = Writer::new();
        inner.bytes(1, b"key").bytes(2, b"value");
        let mut outer = Writer::new();
        outer
            .uint(1, 300)
            .uint(2, 0)
            .message(3, inner)
            .bytes(4, b"")
            .uint(536_870_911, u64::MAX);
        let bytes = outer.into_bytes();
        let read: Vec<_> = fields(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), 4, "a zero varint is not written");
        assert_eq!(read[0], (1, Value::Varint(300)));
        assert_eq!(read[1], (3, Value::Bytes(b"\x0a\x03key\x12\x05value")));
        assert_eq!(read[2], (4, Value::Bytes(b"")));
        assert_eq!(read[3], (536_870_911, Value::Varint(u64::MAX)));
    }

    #[test]
    fn unknown_fixed_width_fields_are_skipped() {
        // field 1 fixed64, field 2 fixed32, field 3 varint 1.
        let bytes = [0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4, 0x18, 1];
        let read: Vec<_> = fields(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            read,
            [(1, Value::Fixed), (2, Value::Fixed), (3, Value::Varint(1))]
        );
    }

    #[test]
    fn truncated_and_invalid_input_is_malformed_not_a_panic() {
        for bad in [
            &[0x0a, 0x05, b'a'][..],             // length beyond the end
            &[0x08][..],                         // key without its varint
            &[0x80, 0x80][..],                   // unterminated varint
            &[0x00, 0x01][..],                   // field number 0
            &[0x0b][..],                         // group start
            &[0xff; 11][..],                     // varint longer than ten bytes
            &[0x0a, 0xff, 0xff, 0xff, 0x0f][..], // huge length
        ] {
            assert!(fields(bad).any(|f| f.is_err()), "{bad:?}");
        }
    }
}
