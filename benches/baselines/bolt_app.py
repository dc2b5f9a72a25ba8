"""Baseline for scripts/bench-ack.sh: a Slack Bolt (async) app that verifies
the signature and acks `/scale help`, served by Bolt's aiohttp server.
Authorization is answered locally so that no request leaves the machine."""
import os
import sys

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult


async def authorize(enterprise_id, team_id, logger):
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id,
        bot_token="xoxb-bench-token",
        bot_user_id="U0BOT",
    )


app = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"], authorize=authorize)


@app.command("/scale")
async def scale(ack, command):
    await ack({"response_type": "ephemeral", "text": "scalebot commands: throttles, concurrency, ..."})


if __name__ == "__main__":
    app.start(port=int(sys.argv[1]))
