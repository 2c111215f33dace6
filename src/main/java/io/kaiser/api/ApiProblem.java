package io.kaiser.api;

import java.util.LinkedHashMap;
import java.util.Map;

/** An error answered to a REST caller as {@code application/problem+json} (RFC 9457). */
public class ApiProblem extends RuntimeException {
    private final int status;
    private final String title;

    public ApiProblem(int status, String title, String detail) {
        super(detail, null, false, false);
        this.status = status;
        this.title = title;
    }

    public static ApiProblem badRequest(String detail) {
        return new ApiProblem(400, "Invalid request", detail);
    }

    public static ApiProblem notFound(String detail) {
        return new ApiProblem(404, "Not found", detail);
    }

    public static ApiProblem conflict(String detail) {
        return new ApiProblem(409, "Conflict", detail);
    }

    public int getStatus() {
        return status;
    }

    public Map<String, Object> body(String instance) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "https://kaiser.io/problems/" + title.toLowerCase().replace(' ', '-'));
        m.put("title", title);
        m.put("status", status);
        m.put("detail", getMessage());
        if (instance != null) {
            m.put("instance", instance);
        }
        return m;
    }
}
