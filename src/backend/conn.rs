//! A standalone connection whose every request is bounded by the timeout as
//! a whole, and how one is opened (TCP connect + handshake within the limit).

use std::time::{Duration, Instant};

use redis::{ConnectionLike, RedisResult, Value};

use crate::errors::{CoreError, CoreResult};
use crate::settings::Common;

use super::pool::explain_timeout;

/// Open a connection with `client`; TCP connect *and* handshake
/// (AUTH/HELLO/SELECT) together are bounded by `connect_timeout`.
///
/// redis-rs gives each handshake reply the whole time left after the TCP
/// connect, so against a server that accepts and never answers, AUTH +
/// SELECT would take twice the limit. The limit handed to redis-rs is
/// divided by the number of handshake replies to keep the sum within it.
pub(crate) fn connect(
    client: &redis::Client,
    handshake_replies: u32,
    common: &Common,
    addr: &str,
) -> CoreResult<Conn> {
    let per_step = common.connect_timeout / handshake_replies.max(1);
    let conn = client.get_connection_with_timeout(per_step).map_err(|e| {
        explain_timeout(
            CoreError::from_redis(addr, &e),
            "connect + handshake (AUTH/HELLO/SELECT) did not complete",
            common.connect_timeout,
        )
    })?;
    // A write followed by `WAIT` may block for the replica timeout on top.
    let timeout = common.reply_budget();
    conn.set_read_timeout(Some(timeout))
        .and_then(|()| conn.set_write_timeout(Some(timeout)))
        .map_err(|e| CoreError::from_redis(addr, &e))?;
    Ok(Conn {
        inner: conn,
        timeout,
    })
}

/// A pooled connection. Every request is bounded by the configured timeout
/// *as a whole*: redis-rs's own pipeline reader keeps reading the remaining
/// replies after a timed-out one, each read waiting the full socket timeout
/// again (a 20-command transaction against a stalled server would block for
/// 20 x timeout). Here a pipeline shares one deadline and stops at the first
/// failed read; the caller then drops the connection, so a late reply can
/// never be read as the answer to a later command.
pub struct Conn {
    inner: redis::Connection,
    timeout: Duration,
}

fn deadline_passed() -> redis::RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no complete reply within the timeout",
    )
    .into()
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let deadline = Instant::now() + self.timeout;
        self.inner.send_packed_command(cmd)?;
        let mut replies = Vec::with_capacity(count);
        // A command refused while queueing (e.g. NOPERM under an ACL): EXEC then aborts.
        let mut queue_error: Option<redis::ServerError> = None;
        let mut total = offset + count;
        let mut idx = 0;
        // The socket timeout currently set. Re-arming it costs a syscall per
        // reply, and replies usually come back-to-back from one buffered read:
        // re-arm only once the time already spent exceeds 1/32 of it, which
        // bounds the whole request by `timeout * 33/32`.
        let mut armed = self.timeout;
        while idx < total {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(deadline_passed());
            }
            if armed - left.min(armed) > armed / 32 {
                self.inner.set_read_timeout(Some(left))?;
                armed = left;
            }
            // Fail fast: the first failed read ends the request (the connection is dropped).
            match self.inner.recv_response()? {
                // RESP3 out-of-band data is not a reply: read one more.
                Value::Push { .. } => total += 1,
                Value::ServerError(e) if idx < offset => {
                    queue_error.get_or_insert(e);
                }
                v if idx >= offset => replies.push(v),
                _ => {}
            }
            idx += 1;
        }
        if armed != self.timeout {
            self.inner.set_read_timeout(Some(self.timeout))?;
        }
        match queue_error {
            Some(e) => Err(e.into()),
            None => Ok(replies),
        }
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.inner.check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}
