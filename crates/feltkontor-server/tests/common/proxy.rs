//! A TCP proxy on loopback between the sync client and the server that, while faulty, breaks
//! connections the way guest networks and train Wi-Fi do: refuses some outright, delays some,
//! cuts requests off half-way, resets some in the middle of the answer (RST) and closes others
//! after part of the answer (FIN). Each connection draws one fate from a seeded generator.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fate {
    Pass,
    /// Accepted and closed at once.
    Refuse,
    /// Connected after a pause (20–400 ms).
    Delay,
    /// Only part of the request reaches the server; then both sides are closed.
    CutRequest,
    /// Part of the answer, then a reset (RST).
    Reset,
    /// Part of the answer, then an orderly close (FIN): a truncated answer.
    Truncate,
}

pub struct Proxy {
    pub base: String,
    faulty: Arc<AtomicBool>,
    /// Connections per fate while faulty.
    pub fates: Arc<Mutex<std::collections::BTreeMap<Fate, u64>>>,
    pub connections: Arc<AtomicU64>,
    /// Bytes passed from the server to clients.
    pub bytes_down: Arc<AtomicU64>,
    /// When `bytes_down` reaches this, the network goes: connections end there.
    cut_down_at: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(target: SocketAddr, seed: u64) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let faulty = Arc::new(AtomicBool::new(false));
        let fates: Arc<Mutex<std::collections::BTreeMap<Fate, u64>>> = Arc::default();
        let connections = Arc::new(AtomicU64::new(0));
        let bytes_down = Arc::new(AtomicU64::new(0));
        let cut_down_at = Arc::new(AtomicU64::new(u64::MAX));
        let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        {
            let (faulty, fates, connections, down, cap) = (
                faulty.clone(),
                fates.clone(),
                connections.clone(),
                bytes_down.clone(),
                cut_down_at.clone(),
            );
            runtime.spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::Relaxed);
                    let (fate, cut, pause) = {
                        let mut rng = rng.lock().unwrap();
                        let fate = if faulty.load(Ordering::Relaxed) {
                            match rng.gen_range(0..100) {
                                0..=39 => Fate::Pass,
                                40..=49 => Fate::Refuse,
                                50..=61 => Fate::Delay,
                                62..=71 => Fate::CutRequest,
                                72..=85 => Fate::Reset,
                                _ => Fate::Truncate,
                            }
                        } else {
                            Fate::Pass
                        };
                        (
                            fate,
                            rng.gen_range(1..4_000usize),
                            rng.gen_range(20..400u64),
                        )
                    };
                    if faulty.load(Ordering::Relaxed) {
                        *fates.lock().unwrap().entry(fate).or_default() += 1;
                    }
                    tokio::spawn(relay(
                        client,
                        target,
                        fate,
                        cut,
                        pause,
                        down.clone(),
                        cap.clone(),
                    ));
                }
            });
        }
        Proxy {
            base,
            faulty,
            fates,
            connections,
            bytes_down,
            cut_down_at,
            _runtime: runtime,
        }
    }

    pub fn set_faulty(&self, on: bool) {
        self.faulty.store(on, Ordering::Relaxed);
    }

    /// The network goes once `bytes_down` reaches `at` (in the middle of an answer): the
    /// connections passing data then end. `u64::MAX`: the network is back.
    pub fn cut_down_at(&self, at: u64) {
        self.cut_down_at.store(at, Ordering::SeqCst);
    }
}

// Linger zero makes the close a reset and does not block.
#[allow(deprecated)]
async fn relay(
    client: TcpStream,
    target: SocketAddr,
    fate: Fate,
    cut: usize,
    pause: u64,
    counted: Arc<AtomicU64>,
    cap: Arc<AtomicU64>,
) {
    if matches!(fate, Fate::Refuse | Fate::Reset) {
        // Closing with linger zero sends a reset instead of an orderly close.
        let _ = client.set_linger(Some(Duration::ZERO));
    }
    if fate == Fate::Refuse {
        return;
    }
    if fate == Fate::Delay {
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        // The server is down (killed and not yet restarted): the client sees a reset.
        let _ = client.set_linger(Some(Duration::ZERO));
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up_limit = if fate == Fate::CutRequest {
        cut
    } else {
        usize::MAX
    };
    let down_limit = if matches!(fate, Fate::Reset | Fate::Truncate) {
        cut
    } else {
        usize::MAX
    };
    // Set before the server can see the end of a cut-off request, so its answer to the part it
    // got is never passed on: the connection died with the request.
    let cut_off = Arc::new(AtomicBool::new(false));
    let cut_flag = cut_off.clone();
    let mut up = tokio::spawn(async move {
        if copy_limited(&mut cr, &mut sw, up_limit, None, None).await {
            cut_flag.store(true, Ordering::SeqCst);
        }
        if up_limit == usize::MAX {
            // The client finished sending: pass the close on.
            let _ = sw.shutdown().await;
            std::future::pending::<()>().await;
        }
        // A cut-off request: the connection ends here (the halves drop with the task).
    });
    let down = copy_limited(
        &mut sr,
        &mut cw,
        down_limit,
        Some((&counted, &cap)),
        Some(&cut_off),
    );
    tokio::select! {
        _ = down => {}
        _ = &mut up => {}
    }
    up.abort();
    if fate != Fate::Reset {
        let _ = cw.shutdown().await;
    }
}

/// Copies until end of stream or `limit` bytes (then returns `true`), or until `stop` is set.
async fn copy_limited(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    limit: usize,
    counted: Option<(&AtomicU64, &AtomicU64)>,
    stop: Option<&AtomicBool>,
) -> bool {
    let mut left = limit;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        let want = buf.len().min(left);
        match from.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => return false,
            Ok(mut n) => {
                if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                    return false;
                }
                // The network goes at the byte the test chose.
                let mut cut = false;
                if let Some((c, cap)) = counted {
                    let room = cap
                        .load(Ordering::SeqCst)
                        .saturating_sub(c.load(Ordering::SeqCst));
                    if (n as u64) > room {
                        n = room as usize;
                        cut = true;
                    }
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return false;
                }
                left -= n;
                if let Some((c, _)) = counted {
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
                if cut {
                    return false;
                }
            }
        }
    }
    true
}
