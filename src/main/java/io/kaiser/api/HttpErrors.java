package io.kaiser.api;

import io.vertx.ext.web.RoutingContext;
import org.apache.camel.CamelContext;
import org.apache.camel.component.platform.http.vertx.VertxPlatformHttpRouter;

/**
 * Answers the errors Vert.x produces before a Camel route runs (a body over camel.server.max-body-size, a path no
 * route serves) as {@code application/problem+json} like every other API error, instead of Vert.x's plain text and
 * HTML pages.
 */
public final class HttpErrors {
    private HttpErrors() {
    }

    public static void mount(CamelContext camel) {
        String port = camel.resolvePropertyPlaceholders("{{camel.server.port:8080}}");
        VertxPlatformHttpRouter router = VertxPlatformHttpRouter.lookup(camel, VertxPlatformHttpRouter.getRouterNameFromPort(Integer.parseInt(port)));
        if (router == null) {
            router = VertxPlatformHttpRouter.lookup(camel);
        }
        if (router == null) {
            return;
        }
        // the body handler fails the request with 413 before any Camel route sees it
        router.route().order(Integer.MIN_VALUE).failureHandler(ctx -> {
            if (ctx.statusCode() == 413) {
                problem(ctx, 413, "Payload too large", "the request body exceeds the server's limit");
            } else {
                ctx.next();
            }
        });
        // the last route: reached only when no route answered (unknown path, or a method the path does not take)
        router.route().order(Integer.MAX_VALUE).handler(ctx -> problem(ctx, 404, "Not found", "no resource at this path for "
                + ctx.request().method()));
    }

    private static void problem(RoutingContext ctx, int status, String title, String detail) {
        if (ctx.response().ended() || ctx.response().headWritten()) {
            return;
        }
        ctx.response().setStatusCode(status).putHeader("Content-Type", "application/problem+json")
                .end("{\"type\":\"https://kaiser.io/problems/" + title.toLowerCase().replace(' ', '-') + "\",\"title\":\"" + title
                        + "\",\"status\":" + status + ",\"detail\":\"" + detail + "\"}");
    }
}
