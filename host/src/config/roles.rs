//! Which services a process runs (`--role`, DESIGN §1).

/// One service of the platform (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `POST /v1/logs` into the queue.
    Ingest,
    /// The pipeline workers, and the plugin, pipeline and dead-letter API
    /// (plugins live beside the workers that run them).
    Processor,
    /// The read API (list, search, detail, stats) and the admin API.
    Search,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Processor => "processor",
            Role::Search => "search",
        }
    }
}

/// A set of roles: `all`, or a comma-separated list such as
/// `ingest,search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub processor: bool,
    pub search: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        ingest: true,
        processor: true,
        search: true,
    };

    pub fn parse(s: &str) -> Result<Roles, String> {
        let mut roles = Roles {
            ingest: false,
            processor: false,
            search: false,
        };
        for part in s.split(',').map(str::trim) {
            match part {
                "all" => roles = Roles::ALL,
                "ingest" => roles.ingest = true,
                "processor" => roles.processor = true,
                "search" => roles.search = true,
                other => return Err(format!("unknown role {other:?}: use ingest, processor, search or all")),
            }
        }
        Ok(roles)
    }

    pub fn has(&self, role: Role) -> bool {
        match role {
            Role::Ingest => self.ingest,
            Role::Processor => self.processor,
            Role::Search => self.search,
        }
    }

    pub fn names(&self) -> String {
        if *self == Roles::ALL {
            return "all".into();
        }
        [Role::Ingest, Role::Processor, Role::Search]
            .into_iter()
            .filter(|r| self.has(*r))
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse() {
        assert_eq!(Roles::parse("all"), Ok(Roles::ALL));
        assert_eq!(Roles::parse("ingest,search,processor"), Ok(Roles::ALL));
        let r = Roles::parse("ingest, search").expect("parses");
        assert!(r.has(Role::Ingest) && r.has(Role::Search) && !r.has(Role::Processor));
        assert_eq!(r.names(), "ingest,search");
        assert!(Roles::parse("indexer").is_err());
        assert!(Roles::parse("").is_err());
    }
}
