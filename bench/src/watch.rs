//! Watch streams that are open (initial list done) before a timed action starts, so that no
//! change is missed and nothing is polled.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::Config};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Consecutive watch errors after which a wait gives up.
const MAX_ERRORS: usize = 20;

type Events<K> = Pin<Box<dyn Stream<Item = Result<Event<K>, watcher::Error>> + Send>>;

/// An open watch on objects of one kind.
pub struct Watch<K> {
    what: String,
    events: Events<K>,
    errors: usize,
}

impl<K> Watch<K>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    /// Opens a watch and consumes its initial listing; returns the watch and the objects listed.
    pub async fn open(
        what: impl Into<String>,
        api: Api<K>,
        config: Config,
    ) -> Result<(Watch<K>, Vec<K>), Error> {
        let mut watch = Watch {
            what: what.into(),
            events: watcher::watcher(api, config).default_backoff().boxed(),
            errors: 0,
        };
        let mut listed = Vec::new();
        loop {
            match watch.events.next().await {
                Some(Ok(Event::InitApply(obj))) => listed.push(obj),
                Some(Ok(Event::InitDone)) => return Ok((watch, listed)),
                Some(Ok(_)) => {}
                Some(Err(e)) => watch.failed(e)?,
                None => return Err(watch.ended()),
            }
        }
    }

    /// Opens a watch on the single object `name`.
    pub async fn one(
        what: impl Into<String>,
        api: Api<K>,
        name: &str,
    ) -> Result<(Watch<K>, Option<K>), Error> {
        let config = Config::default().fields(&format!("metadata.name={name}"));
        let (watch, listed) = Watch::open(what, api, config).await?;
        Ok((watch, listed.into_iter().next()))
    }

    /// The next created or changed object (deletions and re-lists are skipped).
    pub async fn next(&mut self) -> Result<K, Error> {
        loop {
            match self.events.next().await {
                Some(Ok(Event::Apply(obj) | Event::InitApply(obj))) => {
                    self.errors = 0;
                    return Ok(obj);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => self.failed(e)?,
                None => return Err(self.ended()),
            }
        }
    }

    /// Waits until an object satisfies `done`, up to `within`; returns when it was seen.
    pub async fn until(
        &mut self,
        within: Duration,
        done: impl Fn(&K) -> bool,
    ) -> Result<Instant, Error> {
        let what = self.what.clone();
        let wait = async {
            loop {
                let obj = self.next().await?;
                if done(&obj) {
                    return Ok::<_, Error>(Instant::now());
                }
            }
        };
        tokio::time::timeout(within, wait)
            .await
            .map_err(|_| Error::Timeout {
                what,
                after: within,
            })?
    }

    fn failed(&mut self, source: watcher::Error) -> Result<(), Error> {
        self.errors += 1;
        eprintln!("[bench] watch on {}: {source}", self.what);
        if self.errors >= MAX_ERRORS {
            return Err(Error::Watch {
                what: self.what.clone(),
                source,
            });
        }
        Ok(())
    }

    fn ended(&self) -> Error {
        Error::Setting(format!("the watch on {} ended", self.what))
    }
}

/// A watch on GitRepositories or Kustomizations.
pub type DynWatch = Watch<DynamicObject>;
