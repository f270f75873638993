//! The top-level `"$schema"` of a definition file: the JSON Schema editors check the file
//! against (`definitions/schema/definition.schema.json`). The loader reads past it; the
//! definition's own fields still refuse any key they do not know.

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};

/// The key editors read and the loader skips.
pub const SCHEMA_KEY: &str = "$schema";

/// A deserializer of a definition whose top-level object may hold [`SCHEMA_KEY`]: the entry is
/// skipped before the definition's fields see it, whatever its value (the caller checks that).
pub struct SkipSchemaKey<D>(pub D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for SkipSchemaKey<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_struct(name, fields, SkippingVisitor(visitor))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Hands the definition's visitor the top-level map without the [`SCHEMA_KEY`] entry.
struct SkippingVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for SkippingVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(SkippingMap(map))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(seq)
    }
}

struct SkippingMap<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SkippingMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            match self.0.next_key::<String>()? {
                Some(key) if key == SCHEMA_KEY => {
                    self.0.next_value::<de::IgnoredAny>()?;
                }
                Some(key) => return seed.deserialize(key.into_deserializer()).map(Some),
                None => return Ok(None),
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Two {
        a: u32,
        #[serde(default)]
        b: Vec<Two>,
    }

    fn parse(text: &str) -> Result<Two, String> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        Two::deserialize(SkipSchemaKey(&mut deserializer)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_top_level_schema_key_is_skipped_and_nothing_else() {
        let expected = Two { a: 1, b: vec![] };
        assert_eq!(parse(r#"{"$schema": "./s.json", "a": 1}"#), Ok(expected));
        assert_eq!(
            parse(r#"{"a": 1, "$schema": {"any": [1]}, "b": []}"#)
                .unwrap()
                .a,
            1
        );
        let unknown = parse(r#"{"a": 1, "c": 2}"#).unwrap_err();
        assert!(unknown.starts_with("unknown field `c`"), "{unknown}");
        let nested = parse(r#"{"a": 1, "b": [{"a": 2, "$schema": "x"}]}"#).unwrap_err();
        assert!(nested.starts_with("unknown field `$schema`"), "{nested}");
        let twice = parse(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(twice.starts_with("duplicate field `a`"), "{twice}");
    }
}
