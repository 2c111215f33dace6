#!/usr/bin/env bash
# Firmware CI: host build with sanitizers and -Werror, ctest, kaiser-vdev build, and a short smoke
# test of 3 virtual devices against the broker in KAISER_MQTT_URL (skipped if unreachable).
# Assumes the Debian packages below are installed (.ci/run installs them).
FIRMWARE_APT_PACKAGES="build-essential cmake pkg-config libcmocka-dev libcjson-dev libmosquitto-dev mosquitto-clients python3 python3-jsonschema"
set -euo pipefail

FW_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${KAISER_FW_BUILD_DIR:-$FW_DIR/build}"
URL="${KAISER_MQTT_URL:-mqtt://127.0.0.1:1883}"

echo "== firmware: the portable core includes no ESP-IDF header and hard-codes no kaiser_id"
if grep -rnE '#include *[<"](esp_|freertos/|driver/|nvs|sdkconfig|mqtt_client)' "$FW_DIR/components/kaiser_core"; then
    echo "FAIL: ESP-IDF include in kaiser_core"
    exit 1
fi
if grep -rn '"kaiser/god' "$FW_DIR/components" "$FW_DIR/linux"; then
    echo "FAIL: hard-coded kaiser/god topic"
    exit 1
fi

echo "== firmware: configure + build (ASan/UBSan, -Wall -Wextra -Werror)"
cmake -S "$FW_DIR/host" -B "$BUILD" -DKAISER_SANITIZE=ON -DKAISER_WERROR=ON -DKAISER_BUILD_VDEV=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

echo "== firmware: ctest"
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)"

if python3 -c "import jsonschema" 2>/dev/null; then
    echo "== firmware: golden vectors against contract/schemas"
    python3 "$FW_DIR/scripts/validate_vectors.py" "$FW_DIR/../contract"
fi

echo "== firmware: kaiser-vdev smoke against $URL"
hostport="${URL#*://}"
host="${hostport%%:*}"
port="${hostport##*:}"
[ "$port" = "$hostport" ] && port=1883
if ! timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "broker $host:$port not reachable: smoke test skipped"
    exit 0
fi
smoke="$(mktemp -d)"
trap "cp \"\$smoke\"/capture.txt /tmp/kaiser-capture.txt 2>/dev/null; rm -rf \"\$smoke\"" EXIT
prefix="ESP_CI$$_"
# A kaiser_id of its own keeps this run apart from any Kaiser server using the same broker
# (which would answer these heartbeats with pending_approval and make the result depend on it).
KID="ci$$"
dev="kaiser/$KID/esp/${prefix}0001"
VEC="$FW_DIR/../contract/vectors"
# Capture every message of this run's devices (both directions) for the checks below.
timeout 16 mosquitto_sub -h "$host" -p "$port" -F '%t %p' -t "kaiser/$KID/esp/${prefix}0001/#" \
    -t "kaiser/$KID/esp/${prefix}0002/#" -t "kaiser/$KID/esp/${prefix}0003/#" > "$smoke/capture.txt" 2>/dev/null &
sub_pid=$!
# Stand-in for the server's registration route (answers heartbeats with a valid ACK).
"$BUILD/linux/kaiser-ackd" --url "$URL" --duration 15 2> "$smoke/ackd.txt" &
ackd_pid=$!
sleep 0.5
timeout 40 "$BUILD/linux/kaiser-vdev" --url "$URL" --count 3 --prefix "$prefix" --kaiser-id "$KID" --duration 12 --stats-s 4 \
    --heartbeat-s 5 --data-s 2 > "$smoke/stats.txt" &
vdev_pid=$!
send() { # schema case topic-suffix: publish a server-to-device golden vector to device 0001
    sed "s/\"kaiser_id\":\"god\"/\"kaiser_id\":\"$KID\"/" "$VEC/$1/$2.json" > "$smoke/send.json"
    mosquitto_pub -h "$host" -p "$port" -q 2 -t "$dev/$3" -f "$smoke/send.json"
}
sleep 2.5
send config full config
send zone-assign assign zone/assign
send subzone-assign assign subzone/assign
send actuator-command on actuator/5/command
send actuator-command pwm actuator/18/command
send sensor-command measure sensor/4/command
send system-command status system/command
send emergency-command emergency_stop actuator/emergency
sleep 6
send emergency-command clear_emergency actuator/emergency
vdev_rc=0
wait "$vdev_pid" || vdev_rc=$?
sleep 0.5
# The vdevs leave with "disconnect with will": clear this run's retained wills from the broker.
for i in 0001 0002 0003; do
    mosquitto_pub -h "$host" -p "$port" -q 1 -r -n -t "kaiser/$KID/esp/${prefix}${i}/system/will" || true
done
wait "$sub_pid" || true
wait "$ackd_pid" || true
cat "$smoke/stats.txt"
final="$(tail -n 1 "$smoke/stats.txt")"
fail=0
[ "$vdev_rc" -eq 0 ] || { echo "FAIL: kaiser-vdev exited with status $vdev_rc (sanitizer report above?)"; fail=1; }
check() { # description, grep pattern on the capture
    if grep -q -- "$2" "$smoke/capture.txt"; then
        echo "ok: $1"
    else
        echo "FAIL: $1 (no message matching: $2)"
        grep -- "${2%% *}" "$smoke/capture.txt" | cut -c1-300 || true
        fail=1
    fi
}
echo "$final" | grep -q '"connected":3' || { echo "FAIL: not all 3 devices connected"; fail=1; }
echo "$final" | grep -q '"registered":3' || { echo "FAIL: not all 3 devices registered"; fail=1; }
hb="$(grep -c "^kaiser/$KID/esp/${prefix}000[123]/system/heartbeat " "$smoke/capture.txt" || true)"
echo "heartbeats seen on the broker: $hb"
[ "${hb:-0}" -ge 6 ] || { echo "FAIL: fewer than 6 heartbeats on the broker"; fail=1; }
# Every command is answered with its correlation_id. Success values are not asserted: another
# client of a shared broker (a server test) may broadcast an emergency stop at any time.
check "sensor data" "^$dev/sensor/4/data "
check "config_response" "^$dev/config_response .*5f1c0e2a-7b3d-4c5e-8f9a-0b1c2d3e4f5a"
check "zone/ack" "^$dev/zone/ack .*bc1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f"
check "subzone/ack" "^$dev/subzone/ack .*e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"
check "actuator response (ON)" "^$dev/actuator/5/response .*9c1e6a52-3f0e-4d1c-9a57-2f1e0c3b7d11"
check "actuator response (PWM)" "^$dev/actuator/18/response .*4b7f2c1e-8a3d-4f5b-9c6e-1d2a3b4c5d6e"
check "sensor response" "^$dev/sensor/4/response .*2a3b4c5d-6e7f-4809-9a1b-2c3d4e5f6a7b"
check "system command response" "^$dev/system/command/response .*5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f"
check "emergency ack" "^$dev/actuator/emergency/ack .*inc-42:ESP_A1B2C3:all"
check "recovery confirm" "^$dev/actuator/recovery_confirm .*3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
if python3 -c "import jsonschema" 2>/dev/null; then
    echo "== every captured message against contract/topics.yaml + contract/schemas"
    python3 "$FW_DIR/scripts/validate_capture.py" "$FW_DIR/../contract" "$smoke/capture.txt" || fail=1
else
    echo "python3-jsonschema not installed: wire capture not validated against the schemas"
fi
if [ "$fail" -ne 0 ]; then
    echo "vdev smoke: 0 passed, 1 failed"
    exit 1
fi
echo "vdev smoke: 1 passed, 0 failed"
