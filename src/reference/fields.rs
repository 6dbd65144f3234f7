//! The TOML keys a configuration struct accepts, read from its `Deserialize` implementation
//! without an instance: serde's derive passes every struct's field names to
//! `Deserializer::deserialize_struct`, and [`fields_of`] is a deserializer that keeps them
//! and stops there.
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The serde field names (TOML keys) of `T`, in declaration order; empty when `T` does not
/// deserialize as a struct (a map, an enum, a struct with `#[serde(flatten)]` fields).
///
/// ```
/// use zhishi::reference::fields::fields_of;
/// use zhishi::stages::facts::FactsOptions;
/// assert_eq!(fields_of::<FactsOptions>(), ["per_mention"]);
/// ```
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields = None;
    // Always an error: the deserializer stops as soon as it has the names.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that records the field list of the struct asked for and fails.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Example {
        first: u32,
        #[serde(default, rename = "second_key")]
        second: Option<String>,
    }

    #[test]
    fn field_names_come_in_declaration_order_with_renames() {
        assert_eq!(fields_of::<Example>(), ["first", "second_key"]);
        assert!(fields_of::<u32>().is_empty());
    }
}
