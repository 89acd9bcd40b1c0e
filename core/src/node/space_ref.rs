//! How callers name a space: the one resolution rule every front end shares.

use std::fmt;

use super::spaces::SpaceState;
use crate::auth::SpaceId;

/// The word that names this device's default (personal) space wherever a
/// space is asked for; no space may be created with this name.
pub const DEFAULT_SPACE_WORD: &str = "default";

/// A space as a caller names it. Build it from text with `From<&str>`: a
/// valid space id is an id, the word [`DEFAULT_SPACE_WORD`] is the default
/// space, anything else is the name of a joined space.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum SpaceRef {
    /// This device's default (personal) space.
    #[default]
    Default,
    /// A space by id.
    Id(SpaceId),
    /// A joined space by name (unique among joined spaces, or an error).
    Name(String),
}

impl From<&str> for SpaceRef {
    fn from(s: &str) -> Self {
        if s == DEFAULT_SPACE_WORD {
            return SpaceRef::Default;
        }
        match s.parse::<SpaceId>() {
            Ok(id) => SpaceRef::Id(id),
            Err(_) => SpaceRef::Name(s.to_owned()),
        }
    }
}

impl From<&String> for SpaceRef {
    fn from(s: &String) -> Self {
        SpaceRef::from(s.as_str())
    }
}

impl From<String> for SpaceRef {
    fn from(s: String) -> Self {
        SpaceRef::from(s.as_str())
    }
}

impl From<SpaceId> for SpaceRef {
    fn from(id: SpaceId) -> Self {
        SpaceRef::Id(id)
    }
}

impl From<&SpaceId> for SpaceRef {
    fn from(id: &SpaceId) -> Self {
        SpaceRef::Id(*id)
    }
}

/// `None` is the default space, as an omitted `--space` is.
impl<T: Into<SpaceRef>> From<Option<T>> for SpaceRef {
    fn from(s: Option<T>) -> Self {
        s.map(Into::into).unwrap_or_default()
    }
}

impl From<&SpaceRef> for SpaceRef {
    fn from(s: &SpaceRef) -> Self {
        s.clone()
    }
}

impl fmt::Display for SpaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpaceRef::Default => f.write_str(DEFAULT_SPACE_WORD),
            SpaceRef::Id(id) => write!(f, "{id}"),
            SpaceRef::Name(name) => f.write_str(name),
        }
    }
}

impl SpaceState {
    /// The state as commands, the API and bindings spell it: `pending`,
    /// `refused`, or the role's name.
    pub fn name(&self) -> &'static str {
        match self {
            SpaceState::Pending => "pending",
            SpaceState::Refused(_) => "refused",
            SpaceState::Member(role) => role.as_str(),
        }
    }

    /// The refusal's reason (as the peer sent it), if refused.
    pub fn reason(&self) -> Option<&str> {
        match self {
            SpaceState::Refused(reason) => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SpaceKey;

    #[test]
    fn text_parses_to_ids_names_and_the_default() {
        let id = SpaceKey::generate().expect("key").id();
        assert_eq!(SpaceRef::from(id.to_string()), SpaceRef::Id(id));
        assert_eq!(SpaceRef::from("default"), SpaceRef::Default);
        assert_eq!(SpaceRef::from("team"), SpaceRef::Name("team".into()));
        assert_eq!(SpaceRef::from(None::<&str>), SpaceRef::Default);
        assert_eq!(SpaceRef::from(Some("team")), SpaceRef::Name("team".into()));
        for s in [
            SpaceRef::Default,
            SpaceRef::Id(id),
            SpaceRef::Name("team".into()),
        ] {
            assert_eq!(SpaceRef::from(s.to_string()), s);
        }
    }
}
