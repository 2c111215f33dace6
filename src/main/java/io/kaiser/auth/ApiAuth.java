package io.kaiser.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import javax.sql.DataSource;

import io.kaiser.api.ApiProblem;
import io.vertx.ext.web.RoutingContext;
import org.apache.camel.CamelContext;
import org.apache.camel.component.platform.http.vertx.VertxPlatformHttpRouter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Bearer tokens for REST and WebSocket: a {@code viewer} reads, an {@code operator} also issues commands, approves
 * and stops. Tokens are random, shown once, and stored as SHA-256 hashes. A Vert.x handler in front of every
 * {@code /api/v1} route answers 401 (no or unknown token) and 403 (role too low) with problem bodies.
 * {@code GET /api/v1/health} stays open for probes. WebSocket clients send the token as
 * {@code Authorization: Bearer} or, where a browser cannot set headers, as {@code ?access_token=}.
 */
public final class ApiAuth {
    private static final Logger LOG = LoggerFactory.getLogger(ApiAuth.class);
    private static final long CACHE_MILLIS = 10_000;

    /** A token's owner and role. */
    public record Principal(String name, String role, long cachedAt) {
        boolean canWrite() {
            return "operator".equals(role);
        }
    }

    private final DataSource dataSource;
    private final boolean enabled;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Principal> cache = new ConcurrentHashMap<>();

    public ApiAuth(DataSource dataSource, boolean enabled) {
        this.dataSource = dataSource;
        this.enabled = enabled;
    }

    public boolean enabled() {
        return enabled;
    }

    /** Mounts the check in front of the API; call before the routes take traffic. */
    public void mount(CamelContext camel) {
        if (!enabled) {
            LOG.warn("API authentication is OFF (kaiser.auth.enabled=false): development mode, never expose this server");
            return;
        }
        String port = camel.resolvePropertyPlaceholders("{{camel.server.port:8080}}");
        VertxPlatformHttpRouter router = VertxPlatformHttpRouter.lookup(camel, VertxPlatformHttpRouter.getRouterNameFromPort(Integer.parseInt(port)));
        if (router == null) {
            router = VertxPlatformHttpRouter.lookup(camel);
        }
        if (router == null) {
            throw new IllegalStateException("cannot protect the API: platform-http router not found");
        }
        router.route("/api/v1/*").order(-1000).handler(this::check);
        LOG.info("API authentication is on: bearer tokens, roles viewer and operator");
    }

    private void check(RoutingContext ctx) {
        String path = ctx.normalizedPath();
        if (path.equals("/api/v1/health")) {
            ctx.next();
            return;
        }
        String token = token(ctx);
        if (token == null) {
            deny(ctx, 401, "Unauthorized", "send a bearer token: Authorization: Bearer <token>");
            return;
        }
        String hash = sha256(token);
        Principal cached = cache.get(hash);
        if (cached != null && System.currentTimeMillis() - cached.cachedAt() < CACHE_MILLIS) {
            decide(ctx, cached);
            return;
        }
        // the body must wait for the route that reads it: hold the request while the database answers
        ctx.request().pause();
        ctx.vertx().<Principal>executeBlocking(() -> lookup(hash), false).onComplete(ar -> {
            ctx.request().resume();
            if (ar.failed()) {
                deny(ctx, 503, "Service unavailable", "cannot check the token now; retry shortly");
            } else if (ar.result() == null) {
                cache.remove(hash);
                deny(ctx, 401, "Unauthorized", "the token is unknown or revoked");
            } else {
                cache.put(hash, ar.result());
                decide(ctx, ar.result());
            }
        });
    }

    private void decide(RoutingContext ctx, Principal p) {
        String method = ctx.request().method().name();
        boolean read = method.equals("GET") || method.equals("HEAD") || method.equals("OPTIONS");
        boolean admin = ctx.normalizedPath().startsWith("/api/v1/auth/");
        if ((!read || admin) && !p.canWrite()) {
            deny(ctx, 403, "Forbidden", "role " + p.role() + " may only read; this needs an operator token");
            return;
        }
        ctx.request().headers().set("X-Kaiser-Principal", p.name());
        ctx.next();
    }

    private static String token(RoutingContext ctx) {
        String auth = ctx.request().getHeader("Authorization");
        if (auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7)) {
            String t = auth.substring(7).trim();
            return t.isEmpty() ? null : t;
        }
        String q = ctx.request().getParam("access_token");
        return q == null || q.isBlank() ? null : q;
    }

    private static void deny(RoutingContext ctx, int status, String title, String detail) {
        String body = "{\"type\":\"https://kaiser.io/problems/" + title.toLowerCase().replace(' ', '-') + "\",\"title\":\"" + title
                + "\",\"status\":" + status + ",\"detail\":\"" + detail + "\"}";
        var response = ctx.response().setStatusCode(status).putHeader("Content-Type", "application/problem+json");
        if (status == 401) {
            response.putHeader("WWW-Authenticate", "Bearer realm=\"kaiser\"");
        }
        response.end(body);
    }

    Principal lookup(String hash) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement(
                     "UPDATE api_tokens SET last_used_at = now() WHERE token_sha256 = ? AND revoked_at IS NULL RETURNING name, role")) {
            ps.setString(1, hash);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? new Principal(rs.getString(1), rs.getString(2), System.currentTimeMillis()) : null;
            }
        }
    }

    /** Creates a token; the secret is in the answer and nowhere else. */
    public Map<String, Object> create(String name, String role) throws SQLException {
        if (name == null || !name.matches("[A-Za-z0-9_.@-]{1,64}")) {
            throw ApiProblem.badRequest("name must be 1 to 64 characters A-Z, a-z, 0-9, _ . @ -");
        }
        if (!"viewer".equals(role) && !"operator".equals(role)) {
            throw ApiProblem.badRequest("role must be viewer or operator");
        }
        byte[] secret = new byte[32];
        random.nextBytes(secret);
        String token = "kst_" + Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
        store(name, role, token);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("name", name);
        out.put("role", role);
        out.put("token", token);
        out.put("note", "shown once: store it now");
        return out;
    }

    private void store(String name, String role, String token) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("""
                     INSERT INTO api_tokens (name, role, token_sha256) VALUES (?, ?, ?)
                     ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, token_sha256 = EXCLUDED.token_sha256,
                                                     created_at = now(), revoked_at = NULL""")) {
            ps.setString(1, name);
            ps.setString(2, role);
            ps.setString(3, sha256(token));
            ps.executeUpdate();
        }
        cache.clear();
    }

    /** Tokens from configuration ("name:role:token,..."), e.g. the first operator of a new installation. */
    public void bootstrap(String spec) throws SQLException {
        if (spec == null || spec.isBlank()) {
            return;
        }
        for (String entry : spec.split(",")) {
            String[] parts = entry.trim().split(":", 3);
            if (parts.length != 3 || parts[2].length() < 16) {
                throw new IllegalArgumentException("kaiser.auth.bootstrap-tokens entries are name:role:token with a token of 16+ characters");
            }
            store(parts[0], parts[1], parts[2]);
        }
    }

    public void revoke(String name) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("UPDATE api_tokens SET revoked_at = now() WHERE name = ? AND revoked_at IS NULL")) {
            ps.setString(1, name);
            if (ps.executeUpdate() == 0) {
                throw ApiProblem.notFound("no active token named " + name);
            }
        }
        cache.clear();
    }

    public List<Map<String, Object>> list() throws SQLException {
        List<Map<String, Object>> out = new ArrayList<>();
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement(
                     "SELECT name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name");
             ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("name", rs.getString(1));
                m.put("role", rs.getString(2));
                m.put("created_at", String.valueOf(rs.getTimestamp(3)));
                m.put("last_used_at", rs.getTimestamp(4) == null ? null : rs.getTimestamp(4).toInstant().toString());
                m.put("revoked", rs.getTimestamp(5) != null);
                out.add(m);
            }
        }
        return out;
    }

    static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
