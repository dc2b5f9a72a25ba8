-- Signed requests already handled, so that a captured request sent again
-- inside its 5-minute window changes nothing. Slack: the request's
-- timestamp and `v0=` signature; Discord: the interaction id. The primary
-- key is the check: of two copies of one request, on any replica, only the
-- first INSERT adds a row. A row is needed only until the signature's
-- window has closed (`expires_ms`: the signed timestamp plus the window
-- and a margin for clocks); after that the verifier refuses the request
-- anyway and a periodic sweep deletes the row.
CREATE TABLE IF NOT EXISTS seen_requests (
    platform     TEXT NOT NULL,
    request_key  TEXT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    PRIMARY KEY (platform, request_key)
);
CREATE INDEX IF NOT EXISTS seen_requests_expiry ON seen_requests (expires_ms);
