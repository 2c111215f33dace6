-- Bearer tokens of the REST and WebSocket API. Only a SHA-256 of each (random, 256-bit) token is kept.
CREATE TABLE api_tokens (
    name          text PRIMARY KEY,
    role          text        NOT NULL CHECK (role IN ('viewer', 'operator')),
    token_sha256  text        NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
