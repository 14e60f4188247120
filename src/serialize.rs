//! The [`Serializer`] trait and the built-in serializers, byte-compatible
//! with Java's `StringSerializer`, `IntegerSerializer`, `LongSerializer`,
//! `ShortSerializer`, `DoubleSerializer`, `FloatSerializer` and
//! `ByteArraySerializer`.
//!
//! A serializer either borrows the bytes the data already is (strings, byte
//! slices: no copy) or writes them into a scratch buffer the producer lends
//! it and reuses across records, so serializing never allocates per record.

use crate::record::Header;

/// The error a serializer returns.
pub type SerializeError = Box<dyn std::error::Error + Send + Sync>;

/// Turns a `T` into the bytes of a record's key or value (Java's
/// `Serializer<T>`).
///
/// Implementations return either a borrow of `data` (when it already is the
/// bytes to send) or a borrow of `scratch` after writing into it. `scratch`
/// arrives empty and its capacity is reused for later records.
///
/// ```
/// use kafka_producer::{Header, Serializer, SerializeError};
///
/// /// Sends a `u16` as two little-endian bytes.
/// struct U16Le;
/// impl Serializer<u16> for U16Le {
///     fn serialize<'a>(&self, _topic: &str, _headers: &mut Vec<Header>, data: &'a u16,
///                      scratch: &'a mut Vec<u8>) -> Result<&'a [u8], SerializeError> {
///         scratch.extend_from_slice(&data.to_le_bytes());
///         Ok(scratch)
///     }
/// }
/// ```
pub trait Serializer<T: ?Sized>: Send + Sync {
    /// Serializes `data`, bound for `topic`. Like Java's
    /// `serialize(topic, headers, data)`, it may read or add headers.
    ///
    /// # Errors
    ///
    /// Any error; `send` returns it as [`crate::Error::Serialization`] and
    /// the record is not sent.
    fn serialize<'a>(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: &'a T,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], SerializeError>;

    /// The Java class this serializer is byte-compatible with, if any. A
    /// `key.serializer` or `value.serializer` property must name it.
    fn java_class(&self) -> Option<&'static str> {
        None
    }
}

impl<T: ?Sized, S: Serializer<T> + ?Sized> Serializer<T> for Box<S> {
    fn serialize<'a>(
        &self,
        topic: &str,
        headers: &mut Vec<Header>,
        data: &'a T,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], SerializeError> {
        (**self).serialize(topic, headers, data, scratch)
    }

    fn java_class(&self) -> Option<&'static str> {
        (**self).java_class()
    }
}

/// UTF-8 bytes of a string, borrowed (Java's `StringSerializer` with its
/// default UTF-8 encoding). Serializes `str`, so a producer typed `str`
/// accepts `String`, `&str`, `Box<str>` and `Cow<str>` records.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;

impl Serializer<str> for StringSerializer {
    fn serialize<'a>(
        &self,
        _topic: &str,
        _headers: &mut Vec<Header>,
        data: &'a str,
        _scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], SerializeError> {
        Ok(data.as_bytes())
    }

    fn java_class(&self) -> Option<&'static str> {
        Some("org.apache.kafka.common.serialization.StringSerializer")
    }
}

/// The bytes themselves, borrowed (Java's `ByteArraySerializer`). Serializes
/// `[u8]`, so a producer typed `[u8]` accepts `Vec<u8>`, `&[u8]`,
/// `[u8; N]` and `Box<[u8]>` records.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteArraySerializer;

impl Serializer<[u8]> for ByteArraySerializer {
    fn serialize<'a>(
        &self,
        _topic: &str,
        _headers: &mut Vec<Header>,
        data: &'a [u8],
        _scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], SerializeError> {
        Ok(data)
    }

    fn java_class(&self) -> Option<&'static str> {
        Some("org.apache.kafka.common.serialization.ByteArraySerializer")
    }
}

macro_rules! big_endian_serializer {
    ($(#[$doc:meta])* $name:ident, $t:ty, $java:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serializer<$t> for $name {
            fn serialize<'a>(
                &self,
                _topic: &str,
                _headers: &mut Vec<Header>,
                data: &'a $t,
                scratch: &'a mut Vec<u8>,
            ) -> Result<&'a [u8], SerializeError> {
                scratch.extend_from_slice(&data.to_be_bytes());
                Ok(scratch)
            }

            fn java_class(&self) -> Option<&'static str> {
                Some($java)
            }
        }
    };
}

big_endian_serializer!(
    /// 4 bytes, big-endian (Java's `IntegerSerializer`).
    IntegerSerializer,
    i32,
    "org.apache.kafka.common.serialization.IntegerSerializer"
);
big_endian_serializer!(
    /// 8 bytes, big-endian (Java's `LongSerializer`).
    LongSerializer,
    i64,
    "org.apache.kafka.common.serialization.LongSerializer"
);
big_endian_serializer!(
    /// 2 bytes, big-endian (Java's `ShortSerializer`).
    ShortSerializer,
    i16,
    "org.apache.kafka.common.serialization.ShortSerializer"
);
big_endian_serializer!(
    /// IEEE 754 bits, 4 bytes big-endian (Java's `FloatSerializer`).
    FloatSerializer,
    f32,
    "org.apache.kafka.common.serialization.FloatSerializer"
);
big_endian_serializer!(
    /// IEEE 754 bits, 8 bytes big-endian (Java's `DoubleSerializer`).
    DoubleSerializer,
    f64,
    "org.apache.kafka.common.serialization.DoubleSerializer"
);

/// The Java serializer classes a `key.serializer` or `value.serializer`
/// property may name: the built-ins above, by full or simple class name.
pub(crate) fn canonical_java_class(name: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "org.apache.kafka.common.serialization.StringSerializer",
        "org.apache.kafka.common.serialization.ByteArraySerializer",
        "org.apache.kafka.common.serialization.IntegerSerializer",
        "org.apache.kafka.common.serialization.LongSerializer",
        "org.apache.kafka.common.serialization.ShortSerializer",
        "org.apache.kafka.common.serialization.FloatSerializer",
        "org.apache.kafka.common.serialization.DoubleSerializer",
    ];
    KNOWN
        .iter()
        .copied()
        .find(|k| *k == name || k.rsplit('.').next() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser<T: ?Sized>(s: &dyn Serializer<T>, v: &T) -> Vec<u8> {
        let mut scratch = Vec::new();
        s.serialize("t", &mut Vec::new(), v, &mut scratch)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn java_byte_layouts() {
        assert_eq!(ser(&IntegerSerializer, &1), [0, 0, 0, 1]);
        assert_eq!(ser(&IntegerSerializer, &-2), [0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(
            ser(&LongSerializer, &0x0102_0304_0506_0708),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(ser(&ShortSerializer, &258), [1, 2]);
        assert_eq!(ser(&DoubleSerializer, &1.0), 1.0f64.to_bits().to_be_bytes());
        assert_eq!(ser(&FloatSerializer, &1.5), 1.5f32.to_bits().to_be_bytes());
        assert_eq!(ser(&StringSerializer, "héllo"), "héllo".as_bytes());
        assert_eq!(ser(&ByteArraySerializer, &[9u8, 8][..]), [9, 8]);
    }

    #[test]
    fn strings_and_bytes_are_borrowed_not_copied() {
        let s = String::from("abc");
        let mut scratch = Vec::new();
        let out = StringSerializer
            .serialize("t", &mut Vec::new(), s.as_str(), &mut scratch)
            .unwrap();
        assert_eq!(out.as_ptr(), s.as_ptr());
        assert!(scratch.is_empty());
    }

    #[test]
    fn java_class_names_resolve() {
        assert_eq!(
            canonical_java_class("StringSerializer"),
            StringSerializer.java_class()
        );
        assert_eq!(
            canonical_java_class("org.apache.kafka.common.serialization.LongSerializer"),
            LongSerializer.java_class()
        );
        assert_eq!(canonical_java_class("com.example.AvroSerializer"), None);
    }
}
