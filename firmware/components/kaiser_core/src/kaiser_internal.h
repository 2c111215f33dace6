/* Functions shared between the core's source files; not part of the public API. */
#ifndef KAISER_INTERNAL_H
#define KAISER_INTERNAL_H

#include "cJSON.h"
#include "kaiser_core.h"

uint64_t k_now(kaiser_device_t *d);
bool k_time_valid(kaiser_device_t *d);
uint32_t k_next_seq(kaiser_device_t *d);
void k_vitals(kaiser_device_t *d, kaiser_vitals_t *v);
void k_copy(char *dst, size_t cap, const char *src);
void k_store(kaiser_device_t *d, const char *key, const char *val);
void k_store_u32(kaiser_device_t *d, const char *key, uint32_t v);
bool k_is_critical(kaiser_topic_kind_t k);
int k_send(kaiser_device_t *d, kaiser_topic_kind_t kind, int gpio, const char *payload);
int k_send_json(kaiser_device_t *d, kaiser_topic_kind_t kind, int gpio, cJSON *obj);
char *k_build_heartbeat(kaiser_device_t *d);
void k_force_heartbeat(kaiser_device_t *d);
int k_sensor_count(kaiser_device_t *d);
int k_actuator_count(kaiser_device_t *d);
cJSON *k_actuator_status_json(kaiser_device_t *d, const kaiser_actuator_t *a);
void k_publish_status(kaiser_device_t *d, kaiser_actuator_t *a);
void k_publish_all_status(kaiser_device_t *d);
/* session/announce with the current handover epoch (at least 1) */
void k_announce_session(kaiser_device_t *d, bool reconnect);
void k_alert(kaiser_device_t *d, int gpio, const char *type, const char *msg);
bool k_pump_protected(kaiser_device_t *d, const kaiser_actuator_t *a);
bool k_set_output(kaiser_device_t *d, kaiser_actuator_t *a, bool on, uint8_t pwm, const char *source);
void k_to_default(kaiser_device_t *d, kaiser_actuator_t *a, const char *source);
bool k_cached_value(kaiser_device_t *d, int gpio, const char *type, double *v);
void k_convert(const char *type, int32_t raw, double *value, const char **unit, const char **quality);
int k_measure(kaiser_device_t *d, kaiser_sensor_t *s, int32_t *last_raw, const char **last_quality);
void k_offline_on_disconnect(kaiser_device_t *d, bool link_lost);
void k_offline_on_valid_ack(kaiser_device_t *d, uint32_t epoch);
void k_rules_evaluate(kaiser_device_t *d);
const char *k_state_name(kaiser_state_t s);
cJSON *k_diagnostics_json(kaiser_device_t *d, const kaiser_vitals_t *v);
void k_subscribe_all(kaiser_device_t *d);
/* kaiser_config.c */
void k_load_persisted_config(kaiser_device_t *d);
void k_handle_config(kaiser_device_t *d, const char *payload, size_t len);
/* kaiser_commands.c */
void k_stop_all(kaiser_device_t *d, const char *reason);
void k_persist_subzones(kaiser_device_t *d);
void k_load_subzones(kaiser_device_t *d, const char *json);

#endif
