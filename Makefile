# Kaiser operator moves. Variables can be overridden: make watch ESP=ESP_12AB34 KAISER_ID=god MQTT_HOST=broker
#
#   make watch ESP=ESP_X      broker traffic of one device (mosquitto_sub -v)
#   make watch-sys            the broker's own $SYS counters (clients, messages, dropped)
#   make tail                 server log (compose service, else the file in LOG)
#   make health               GET /api/v1/health, pretty-printed
#   make device ESP=ESP_X     GET /api/v1/esp/devices/ESP_X (status, last_disconnect, ...)
#   make broker-restart       restart the broker (compose service, else systemd unit mosquitto)
#   make jar / make image     build target/kaiser-server-*.jar + target/lib/, or the Docker image

KAISER_ID   ?= god
ESP         ?=
MQTT_HOST   ?= 127.0.0.1
MQTT_PORT   ?= 1883
# extra mosquitto_sub options: credentials and TLS, e.g. MQTT_OPTS="-u ops -P ... --cafile ca.pem -p 8883"
MQTT_OPTS   ?=
API         ?= http://127.0.0.1:8080/api/v1
# operator or viewer token when authentication is on
TOKEN       ?=
# the compose service names (dev profile); PROFILE=prod uses the prod ones
PROFILE     ?= dev
COMPOSE     ?= docker compose --profile $(PROFILE)
KAISER_SVC  ?= $(if $(filter prod,$(PROFILE)),kaiser-prod,kaiser)
BROKER_SVC  ?= $(if $(filter prod,$(PROFILE)),mosquitto-prod,mosquitto)
# the server log when Kaiser runs outside compose (java -jar ... > kaiser.log)
LOG         ?= kaiser.log

CURL = curl -sS $(if $(TOKEN),-H "Authorization: Bearer $(TOKEN)")
PRETTY = (command -v jq >/dev/null && jq . || cat)
HAVE_COMPOSE = $(shell $(COMPOSE) ps -q $(1) 2>/dev/null | head -n1)

.PHONY: help watch watch-sys tail health device broker-restart jar image

help:
	@sed -n '1,12p' Makefile | sed 's/^# \{0,1\}//'

watch:
	@test -n "$(ESP)" || { echo "usage: make watch ESP=ESP_12AB34 [KAISER_ID=$(KAISER_ID)]" >&2; exit 2; }
	mosquitto_sub -h $(MQTT_HOST) -p $(MQTT_PORT) $(MQTT_OPTS) -v -t 'kaiser/$(KAISER_ID)/esp/$(ESP)/#' -t 'kaiser/$(KAISER_ID)/server/status' -t 'kaiser/broadcast/#'

watch-sys:
	mosquitto_sub -h $(MQTT_HOST) -p $(MQTT_PORT) $(MQTT_OPTS) -v -t '$$SYS/broker/clients/#' -t '$$SYS/broker/messages/#' -t '$$SYS/broker/load/connections/#' -t '$$SYS/broker/store/messages/#'

tail:
	@if [ -n "$(call HAVE_COMPOSE,$(KAISER_SVC))" ]; then $(COMPOSE) logs -f --tail=200 $(KAISER_SVC); \
	elif [ -f "$(LOG)" ]; then tail -F -n 200 "$(LOG)"; \
	else echo "no compose service $(KAISER_SVC) running and no $(LOG): set LOG=path/to/kaiser.log" >&2; exit 1; fi

health:
	@$(CURL) $(API)/health | $(PRETTY)

device:
	@test -n "$(ESP)" || { echo "usage: make device ESP=ESP_12AB34" >&2; exit 2; }
	@$(CURL) $(API)/esp/devices/$(ESP) | $(PRETTY)

broker-restart:
	@if [ -n "$(call HAVE_COMPOSE,$(BROKER_SVC))" ]; then $(COMPOSE) restart $(BROKER_SVC); \
	elif command -v systemctl >/dev/null && systemctl list-unit-files mosquitto.service >/dev/null 2>&1; then sudo systemctl restart mosquitto; \
	else echo "no compose service $(BROKER_SVC) and no systemd unit mosquitto: restart the broker by hand" >&2; exit 1; fi

jar:
	./kaiser jar

image:
	docker build -t kaiser-server .
