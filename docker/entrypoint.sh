#!/usr/bin/env bash
# Docker secrets: for every variable NAME_FILE=/run/secrets/x, export NAME with the file's content (without the
# trailing newline), unless NAME is already set. KAISER_DB_PASSWORD_FILE -> KAISER_DB_PASSWORD, and so on.
# Not the TLS settings KAISER_MQTT_TLS_{CA,CERT,KEY}_FILE: those are file paths the server itself reads.
set -euo pipefail
while IFS='=' read -r name value; do
    case "$name" in
        KAISER_MQTT_TLS_*_FILE) ;;
        KAISER_*_FILE)
            target="${name%_FILE}"
            if [ -z "${!target:-}" ]; then
                if [ ! -r "$value" ]; then
                    echo "entrypoint: $name points to $value, which is not readable" >&2
                    exit 1
                fi
                export "$target"="$(cat "$value")"
            fi
            unset "$name"
            ;;
    esac
done < <(env)
exec "$@"
