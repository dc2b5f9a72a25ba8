"""Baseline for scripts/bench-ack.sh: a Slack Bolt app that verifies the
signature and acks `/scale help`, served by Bolt's own HTTP server."""
import os
import sys

from slack_bolt import App

app = App(
    token="xoxb-bench-token",
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    token_verification_enabled=False,
)


@app.command("/scale")
def scale(ack, command):
    ack({"response_type": "ephemeral", "text": "scalebot commands: throttles, concurrency, ..."})


if __name__ == "__main__":
    app.start(port=int(sys.argv[1]))
