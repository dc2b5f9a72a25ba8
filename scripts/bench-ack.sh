#!/usr/bin/env bash
# Whole-server benchmark on loopback: signed `/scale help` slash commands
# from wrk against `scalebot serve` (release build, SQLite store), the idle
# resident memory of that process, and, as the baseline in the same run, a
# Python Slack Bolt app answering the same signed request.
#
#   cargo build --release && scripts/bench-ack.sh          # DUR=30 by default
#
# Needs wrk (Debian package `wrk`) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/scalebot}"
DUR="${DUR:-30}"
CONNS="${CONNS:-64}"
VENV="${SCALEBOT_BENCH_VENV:-/var/tmp/scalebot-bench-venv}"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

export SLACK_BOT_TOKEN=xoxb-bench-token
export SLACK_SIGNING_SECRET=bench-signing-secret
cat > "$tmp/bench.toml" <<TOML
[server]
listen = "127.0.0.1:3999"
[slack]
api_url = "http://127.0.0.1:9/api"
[aws]
endpoint_url = "http://127.0.0.1:9"
[store]
url = "sqlite://$tmp/bench.db"
[roles]
operators = ["U0BENCH"]
TOML

${SERVER_PIN:-} "$BIN" serve --config "$tmp/bench.toml" 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do curl -fs http://127.0.0.1:3999/healthz >/dev/null && break; sleep 0.1; done
sleep 2
echo "idle RSS of scalebot serve: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

body='token=x&team_id=T0001&team_domain=example&channel_id=C0OPS&channel_name=ops&user_id=U0BENCH&user_name=bench&command=%2Fscale&text=help&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1%2F2&trigger_id=1.2.3&api_app_id=A1'
ts="$(date +%s)"
sig="v0=$(python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), ("v0:"+sys.argv[2]+":"+sys.argv[3]).encode(), hashlib.sha256).hexdigest())' "$SLACK_SIGNING_SECRET" "$ts" "$body")"
cat > "$tmp/ack.lua" <<LUA
wrk.method = "POST"
wrk.body = "$body"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Slack-Request-Timestamp"] = "$ts"
wrk.headers["X-Slack-Signature"] = "$sig"
LUA
# One signed request first, to show what is being measured.
curl -fs -X POST http://127.0.0.1:3999/slack/commands -H 'Content-Type: application/x-www-form-urlencoded' \
  -H "X-Slack-Request-Timestamp: $ts" -H "X-Slack-Signature: $sig" --data "$body" | head -c 120; echo
echo "== scalebot: ${DUR}s, $CONNS connections"
${WRK_PIN:-} wrk -t"${WRK_THREADS:-2}" -c"$CONNS" -d"${DUR}s" --latency -s "$tmp/ack.lua" http://127.0.0.1:3999/slack/commands
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
kill "$pid"; wait "$pid" 2>/dev/null || true

if [ "${BASELINE:-1}" = 1 ]; then
  if ! "$VENV/bin/python" -c 'import slack_bolt' 2>/dev/null; then
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q slack_bolt==1.21.2 aiohttp >/dev/null
  fi
  SLACK_SIGNING_SECRET="$SLACK_SIGNING_SECRET" "$VENV/bin/python" benches/baselines/bolt_app.py 3998 2>"$tmp/bolt.log" &
  bolt=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:3998/ && break; sleep 0.1; done
  echo "== baseline: Python Slack Bolt (AsyncApp on aiohttp), ${DUR}s, $CONNS connections"
  ${WRK_PIN:-} wrk -t"${WRK_THREADS:-2}" -c"$CONNS" -d"${DUR}s" --latency -s "$tmp/ack.lua" http://127.0.0.1:3998/slack/events || true
  kill "$bolt" 2>/dev/null || true
fi
