//! Routing in `hooks listen`: the session's routes with a forwarder and signature settings for
//! each, swapped whole when `hooks.toml` changes (see `reload`), and the choice for one request.
//! The routes themselves (the file, the matching) are `crate::routes`'.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::handle::Signatures;
use crate::exchange::{Request, Verdict};
use crate::forward::Forwarder;
use crate::routes::{self, FlagRoute, Incoming, Routes};
use crate::target::Target;
use crate::verify::{Recognized, Secret};

/// The session's routes, as they are now, and what rebuilding them needs.
pub(super) struct Routing {
    current: Mutex<Arc<Table>>,
    /// Forwarders by target, kept across reloads: each holds its pool of connections.
    forwarders: Mutex<HashMap<String, Arc<Forwarder>>>,
    max_body: usize,
    /// `--secret`, `--provider`, `--tolerance`.
    session: SignatureFlags,
    /// `--route`, tried before the file's routes whatever the file says.
    pub flags: Vec<FlagRoute>,
    /// `--forward-to`, which wins over the file's default.
    pub forward_to: Option<Target>,
}

/// The session's signature flags, which routes without their own settings use.
#[derive(Clone)]
pub(super) struct SignatureFlags {
    pub secrets: Vec<Secret>,
    pub provider: Option<crate::verify::Provider>,
    pub tolerance: Option<Duration>,
}

/// One version of the routes, ready to use.
pub(super) struct Table {
    /// The routes, the default and the file.
    pub routes: Routes,
    /// Each route's forwarder, by index.
    forwarders: Vec<Arc<Forwarder>>,
    /// Each route's signature settings, by index.
    signatures: Vec<Signatures>,
    default: Option<Arc<Forwarder>>,
    /// The session's signature settings: for the default target, and `verdict:` terms.
    session: Signatures,
    /// Some route's match reads the body: a body arriving in pieces must be all in first.
    needs_body: bool,
}

/// Where one request goes, besides the copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Via {
    /// This route (by index).
    Route(usize),
    /// No route took it: the default target.
    Default,
    /// No route took it and there is no default: hooks answers `404`, for this reason.
    Nowhere(String),
}

/// Where one request goes.
pub(super) struct Choice {
    pub via: Via,
    /// The copy routes that get it too (by index).
    pub copies: Vec<usize>,
    /// The event, when matching recognised it already.
    pub event: Option<Option<Recognized>>,
}

impl Routing {
    /// The routing of a session with `routes`, forwarding bodies up to `max_body` bytes.
    pub fn new(
        routes: Routes,
        session: SignatureFlags,
        flags: Vec<FlagRoute>,
        forward_to: Option<Target>,
        max_body: usize,
    ) -> anyhow::Result<Routing> {
        let routing = Routing {
            current: Mutex::new(Arc::new(Table::empty(&session))),
            forwarders: Mutex::new(HashMap::new()),
            max_body,
            session,
            flags,
            forward_to,
        };
        routing.replace(routes)?;
        Ok(routing)
    }

    /// The routes as they are now; a request keeps the version it started with.
    pub fn table(&self) -> Arc<Table> {
        Arc::clone(&self.current.lock().expect("routes lock is never poisoned"))
    }

    /// Makes `routes` the current routes.
    pub fn replace(&self, routes: Routes) -> anyhow::Result<()> {
        let forwarders = routes
            .routes
            .iter()
            .map(|route| self.forwarder(&route.to))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let default = routes
            .default
            .as_ref()
            .map(|target| self.forwarder(target))
            .transpose()?;
        let signatures = routes
            .routes
            .iter()
            .map(|route| route_signatures(route, &self.session))
            .collect();
        let table = Table {
            needs_body: routes::needs_body(&routes.routes),
            forwarders,
            signatures,
            default,
            session: session_signatures(&self.session),
            routes,
        };
        *self.current.lock().expect("routes lock is never poisoned") = Arc::new(table);
        Ok(())
    }

    /// The forwarder to `target`, made once.
    fn forwarder(&self, target: &Target) -> anyhow::Result<Arc<Forwarder>> {
        let mut all = self
            .forwarders
            .lock()
            .expect("forwarders lock is never poisoned");
        let key = target.to_string();
        if let Some(forwarder) = all.get(&key) {
            return Ok(Arc::clone(forwarder));
        }
        let forwarder = Arc::new(Forwarder::new(target.clone(), self.max_body)?);
        all.insert(key, Arc::clone(&forwarder));
        Ok(forwarder)
    }
}

impl Table {
    fn empty(session: &SignatureFlags) -> Table {
        Table {
            routes: Routes::default(),
            forwarders: Vec::new(),
            signatures: Vec::new(),
            default: None,
            session: session_signatures(session),
            needs_body: false,
        }
    }

    /// Whether choosing reads the body (a body arriving in pieces must be all in first).
    pub fn needs_body(&self) -> bool {
        self.needs_body
    }

    /// Whether there are routes to choose from (else everything goes to the default).
    pub fn has_routes(&self) -> bool {
        !self.routes.routes.is_empty()
    }

    /// Where a request no route takes goes: the default, or nowhere.
    pub fn unrouted(&self, method: &str, target: &str) -> Choice {
        Choice {
            via: self.nowhere_or_default(method, target),
            copies: Vec::new(),
            event: None,
        }
    }

    /// Where `request` (whose body is `size` bytes; empty here unless [`Table::needs_body`])
    /// goes; `check` gives its signature verdict under the session's settings.
    pub fn choose(
        &self,
        request: &Request,
        size: u64,
        received_at_ms: i64,
        check: impl Fn(&Request) -> Option<Verdict>,
    ) -> Choice {
        if !self.has_routes() {
            return self.unrouted(&request.method, &request.path);
        }
        let subject = Incoming::new(request, size, received_at_ms, check);
        let decision = routes::decide(&self.routes.routes, &subject);
        Choice {
            via: match decision.primary {
                Some(i) => Via::Route(i),
                None => self.nowhere_or_default(&request.method, &request.path),
            },
            copies: decision.copies,
            event: subject.take_event(),
        }
    }

    fn nowhere_or_default(&self, method: &str, target: &str) -> Via {
        match self.default {
            Some(_) => Via::Default,
            None => Via::Nowhere(routes::unrouted_reason(&self.routes.routes, method, target)),
        }
    }

    /// The forwarder of `via`; `None` for nowhere.
    pub fn forwarder(&self, via: &Via) -> Option<&Forwarder> {
        match via {
            Via::Route(i) => self.forwarders.get(*i).map(|f| &**f),
            Via::Default => self.default.as_deref(),
            Via::Nowhere(_) => None,
        }
    }

    /// The request target `via`'s app gets: the route's `strip_prefix` taken off.
    pub fn path<'t>(&self, via: &Via, target: &'t str) -> std::borrow::Cow<'t, str> {
        let prefix = match via {
            Via::Route(i) => self.routes.routes[*i].strip_prefix.as_deref(),
            _ => None,
        };
        routes::strip(target, prefix)
    }

    /// The name of `via`'s route.
    pub fn route_name(&self, via: &Via) -> Option<String> {
        match via {
            Via::Route(i) => Some(self.routes.routes[*i].name.clone()),
            _ => None,
        }
    }

    /// How `via`'s signatures are checked.
    pub fn signatures(&self, via: &Via) -> &Signatures {
        match via {
            Via::Route(i) => &self.signatures[*i],
            _ => &self.session,
        }
    }

    /// The session's signature settings (for `verdict:` terms in matches).
    pub fn session_signatures(&self) -> &Signatures {
        &self.session
    }

    /// Where webhooks go, for the ready line: `http://localhost:3000`, or with routes `3
    /// routes, else http://localhost:3000`.
    pub fn describe(&self) -> String {
        self.routes.describe()
    }
}

fn session_signatures(flags: &SignatureFlags) -> Signatures {
    Signatures {
        secrets: flags.secrets.clone(),
        provider: flags.provider,
        tolerance: flags.tolerance,
        missing: None,
    }
}

/// A route's signature settings: its provider and `secret_env`'s secret, else the session's.
fn route_signatures(route: &routes::Route, flags: &SignatureFlags) -> Signatures {
    let mut signatures = session_signatures(flags);
    signatures.provider = route.provider.or(flags.provider);
    if let Some(name) = &route.secret_env {
        match std::env::var(name).ok().filter(|value| !value.is_empty()) {
            Some(secret) => signatures.secrets = vec![Secret::new(secret)],
            None => {
                signatures.secrets = Vec::new();
                signatures.missing = Some(format!(
                    "signed, not checked: set {name} (secret_env of route {}) to check it",
                    route.name
                ));
            }
        }
    }
    signatures
}

/// The secrets the routes' `secret_env` variables hold, to mask in the terminal.
pub(super) fn route_secrets(routes: &Routes) -> Vec<String> {
    routes
        .routes
        .iter()
        .filter_map(|route| route.secret_env.as_deref())
        .filter_map(|name| std::env::var(name).ok())
        .filter(|secret| !secret.is_empty())
        .collect()
}
