//! A serde serializer that writes canonical JSON straight into one buffer.
//!
//! Every object's members are written as they come (`"key":value`,
//! comma-separated); when the object ends, the members are put in the order
//! of their written keys if they are not in it already, by copying the
//! object's bytes once. A key written twice (two keys equal once NFC
//! normalized) keeps its last value, as olpc-cjson keeps it.

use serde::ser::{self, Impossible, Serialize};

use super::write_string;

#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

const FLOAT: &str = "floating point numbers are not allowed in canonical JSON";
/// serde_json's name for a `RawValue` passed through a serializer: vouch
/// writes none canonically, and refuses one rather than guess.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

/// Writes `value` canonically at the end of `out`.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(&mut Writer {
        out,
        scratch: Vec::new(),
    })
}

#[derive(Debug)]
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// Where an object's bytes wait while its members are put in order
    /// (one buffer for every object of a document).
    scratch: Vec<u8>,
}

/// One member of an object being written: where its key and its value are.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: (usize, usize),
    end: usize,
}

/// An object being written.
#[derive(Debug)]
struct Object<'w, 'a> {
    w: &'w mut Writer<'a>,
    /// Where the first member starts (after `{`).
    start: usize,
    members: Vec<Member>,
    sorted: bool,
    /// The key of the member being written (for maps).
    key: Option<(usize, usize)>,
}

impl<'w, 'a> Object<'w, 'a> {
    fn new(w: &'w mut Writer<'a>) -> Self {
        w.out.push(b'{');
        let start = w.out.len();
        Object {
            w,
            start,
            members: Vec::new(),
            sorted: true,
            key: None,
        }
    }

    fn begin_key(&mut self) -> usize {
        if !self.members.is_empty() {
            self.w.out.push(b',');
        }
        self.w.out.len()
    }

    fn end_key(&mut self, key_start: usize) {
        let key = (key_start, self.w.out.len());
        if let Some(prev) = self.members.last() {
            if self.w.out[prev.key.0..prev.key.1] >= self.w.out[key.0..key.1] {
                self.sorted = false;
            }
        }
        self.w.out.push(b':');
        self.key = Some(key);
    }

    fn end_value(&mut self) {
        if let Some(key) = self.key.take() {
            self.members.push(Member {
                key,
                end: self.w.out.len(),
            });
        }
    }

    /// Closes the object (its members in order) and gives the writer back.
    fn finish(self) -> &'w mut Writer<'a> {
        if !self.sorted {
            let mut region = std::mem::take(&mut self.w.scratch);
            region.clear();
            region.extend_from_slice(&self.w.out[self.start..]);
            let base = self.start;
            let key = |m: &Member| &region[m.key.0 - base..m.key.1 - base];
            let mut order: Vec<usize> = (0..self.members.len()).collect();
            // Stable: among equal keys the later member stays later.
            order.sort_by(|&a, &b| key(&self.members[a]).cmp(key(&self.members[b])));
            let out = &mut *self.w.out;
            out.truncate(base);
            let mut written = 0;
            for (i, &m) in order.iter().enumerate() {
                let next_equal = order
                    .get(i + 1)
                    .is_some_and(|&n| key(&self.members[n]) == key(&self.members[m]));
                if next_equal {
                    continue; // a later member has this key: it wins
                }
                if written > 0 {
                    out.push(b',');
                }
                let member = self.members[m];
                out.extend_from_slice(&region[member.key.0 - base..member.end - base]);
                written += 1;
            }
            self.w.scratch = region;
        }
        self.w.out.push(b'}');
        self.w
    }
}

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let start = self.begin_key();
        key.serialize(KeyWriter { out: self.w.out })?;
        self.end_key(start);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.w)?;
        self.end_value();
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeStruct for Object<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let start = self.begin_key();
        write_string(key, self.w.out);
        self.end_key(start);
        value.serialize(&mut *self.w)?;
        self.end_value();
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

/// `{"Variant":{...}}`: the inner object, closed twice.
#[derive(Debug)]
struct StructVariant<'w, 'a>(Object<'w, 'a>);

/// `{"Variant":[...]}`.
#[derive(Debug)]
struct TupleVariant<'w, 'a>(Array<'w, 'a>);

/// An array being written.
#[derive(Debug)]
struct Array<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
}

impl Array<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.w)
    }
}

/// The integer methods of a serializer with an `integer` method.
macro_rules! integers {
    () => {
        integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
            serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
            serialize_u64: u64, serialize_u128: u128);
    };
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, v: $t) -> Result<(), Error> {
            self.integer(v)
        })*
    };
}

impl Writer<'_> {
    fn integer<I: itoa::Integer>(&mut self, v: I) -> Result<(), Error> {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
}

/// Sequences, tuples and tuple structs are all arrays.
macro_rules! array {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Array<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.w.out.push(b']');
                Ok(())
            }
        }
    };
}

array!(SerializeSeq, serialize_element);
array!(SerializeTuple, serialize_element);
array!(SerializeTupleStruct, serialize_field);

impl ser::SerializeTupleVariant for TupleVariant<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.0.w.out.extend_from_slice(b"]}");
        Ok(())
    }
}

impl ser::SerializeStructVariant for StructVariant<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(&mut self.0, key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.0.finish().out.push(b'}');
        Ok(())
    }
}

/// Writes `{"variant":` (one member: already in order).
fn open_variant(out: &mut Vec<u8>, variant: &str) {
    out.push(b'{');
    write_string(variant, out);
    out.push(b':');
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'w, 'a>;
    type SerializeTuple = Array<'w, 'a>;
    type SerializeTupleStruct = Array<'w, 'a>;
    type SerializeTupleVariant = TupleVariant<'w, 'a>;
    type SerializeMap = Object<'w, 'a>;
    type SerializeStruct = Object<'w, 'a>;
    type SerializeStructVariant = StructVariant<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers!();
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(Error(FLOAT.into()))
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(Error(FLOAT.into()))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_string(v.encode_utf8(&mut [0; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        open_variant(self.out, variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'w, 'a>, Error> {
        self.out.push(b'[');
        Ok(Array {
            w: self,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Array<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<TupleVariant<'w, 'a>, Error> {
        open_variant(self.out, variant);
        self.out.push(b'[');
        Ok(TupleVariant(Array {
            w: self,
            first: true,
        }))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'w, 'a>, Error> {
        Ok(Object::new(self))
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Object<'w, 'a>, Error> {
        if name == RAW_VALUE {
            return Err(Error("raw JSON values are not written canonically".into()));
        }
        Ok(Object::new(self))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<StructVariant<'w, 'a>, Error> {
        open_variant(self.out, variant);
        Ok(StructVariant(Object::new(self)))
    }
}

/// Map keys: strings, and integers written as strings (as serde_json does).
#[derive(Debug)]
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn integer<I: itoa::Integer>(self, v: I) -> Result<(), Error> {
        write_string(itoa::Buffer::new().format(v), self.out);
        Ok(())
    }
}

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_string(v, self.out);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    integers!();
    fn serialize_bool(self, _v: bool) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}
