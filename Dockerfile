# Kaiser production image: the same jar as `./kaiser jar` (target/kaiser-server-*.jar + target/lib/), routes/ and
# application.properties next to it, run by an unprivileged user.
#
#   docker build -t kaiser-server .
#   docker compose --profile prod up -d        (see docker-compose.yml)
#
# Build stage: Maven with JDK 17. Tests are not run here (they need a broker and PostgreSQL); run them with
# `./kaiser test` before building the image. The embedded/cli profiles are not active, so no HiveMQ, zonky or
# Camel JBang jar reaches target/lib.
FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /build
COPY pom.xml ./
RUN mvn -B -q -Dmaven.test.skip=true dependency:go-offline || true
COPY src/main src/main
COPY contract contract
COPY application.properties ./
RUN mvn -B -Dmaven.test.skip=true package \
    && set -- target/kaiser-server-*.jar && [ "$#" -eq 1 ] && cp "$1" target/kaiser-server.jar \
    && ! ls target/lib | grep -Ei 'hivemq|zonky|embedded-postgres|camel-jbang'

# Runtime stage: JRE only.
FROM eclipse-temurin:17-jre
RUN groupadd --system --gid 10001 kaiser \
    && useradd --system --uid 10001 --gid kaiser --home-dir /app --shell /usr/sbin/nologin kaiser \
    && mkdir -p /app/data && chown kaiser:kaiser /app/data
WORKDIR /app
# the manifest class path is lib/*.jar, relative to the jar
COPY --from=build /build/target/lib/ /app/lib/
COPY --from=build /build/target/kaiser-server.jar /app/kaiser-server.jar
COPY routes/ /app/routes/
COPY application.properties /app/application.properties
COPY docker/entrypoint.sh /app/entrypoint.sh
RUN chmod 0755 /app/entrypoint.sh
USER kaiser:kaiser
# the ingest journal (kaiser.ingest.journal-dir=data/journal): mount a volume so it survives the container
VOLUME ["/app/data"]
EXPOSE 8080
ENV JAVA_TOOL_OPTIONS="-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"
# the JRE image has no curl: bash's /dev/tcp asks the health endpoint (200 + "UP" only when broker and database are up)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /api/v1/health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && grep -q '\"status\":\"UP\"' <&3"]
ENTRYPOINT ["/app/entrypoint.sh"]
CMD ["java", "-jar", "/app/kaiser-server.jar"]
