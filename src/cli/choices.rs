//! A value parser for flags whose values are a fixed list of names parsed
//! by the library's own `FromStr` (so its error message stays), while clap
//! still knows the names: `--help` lists them and shell completion offers
//! them.

use std::marker::PhantomData;
use std::str::FromStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;

/// Parses with `T::from_str`; offers `names` to help and completion.
#[derive(Clone)]
pub struct Choices<T> {
    names: &'static [&'static str],
    parsed: PhantomData<fn() -> T>,
}

impl<T> Choices<T> {
    pub fn new(names: &'static [&'static str]) -> Choices<T> {
        Choices {
            names,
            parsed: PhantomData,
        }
    }
}

impl<T> TypedValueParser for Choices<T>
where
    T: FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        text.parse().map_err(|message: String| {
            let flag = arg.map_or_else(|| "the value".to_string(), |a| format!("'{a}'"));
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("invalid value '{text}' for {flag}: {message}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.names.iter().map(|n| PossibleValue::new(*n))))
    }
}
