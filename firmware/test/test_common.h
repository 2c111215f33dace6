/* Shared setup for the device-level tests. */
#ifndef TEST_COMMON_H
#define TEST_COMMON_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"
#include "kaiser_core.h"

typedef struct {
    fake_port_t fp;
    kaiser_device_t dev;
} fixture_t;

static inline int fx_setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    fp_init(&f->fp);
    kaiser_port_t p = fp_port(&f->fp);
    if (kaiser_init(&f->dev, &p, NULL, "ESP_A1B2C3", NULL) != 0) return -1;
    *state = f;
    return 0;
}

static inline int fx_teardown(void **state) {
    fixture_t *f = *state;
    kaiser_deinit(&f->dev);
    fp_free(&f->fp);
    free(f);
    return 0;
}

#define FX fixture_t *f = *state; fake_port_t *fp = &f->fp; kaiser_device_t *d = &f->dev; (void)fp; (void)d

/* Standard test hardware: pump on 5, pwm fan on 18, ds18b20 on 4, sht31 on 21. */
static const char TEST_CONFIG[] =
    "{\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"Soil temp\",\"subzone_id\":\"bed_a\","
    "\"measurement_interval_seconds\":30,\"onewire_address\":\"28FF641E8D3C0C79\"},"
    "{\"gpio\":21,\"sensor_type\":\"sht31\",\"sensor_name\":\"Air\",\"i2c_address\":68,\"measurement_interval_seconds\":30}],"
    "\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"Pump 1\",\"subzone_id\":\"bed_a\","
    "\"max_runtime_ms\":600000},{\"gpio\":18,\"actuator_type\":\"pwm\",\"actuator_name\":\"Fan\"}]}";

static inline void fx_hardware(fixture_t *f) {
    f->fp.raw[4][0] = 356;            /* 22.25 C */
    f->fp.raw[21][0] = 26214;         /* ~25 C */
    f->fp.raw[21][1] = 39321;         /* ~60 % */
    assert_int_equal(kaiser_apply_config_json(&f->dev, TEST_CONFIG), 0);
}

static inline void cmd(kaiser_device_t *d, int gpio, const char *json) {
    char suffix[48];
    snprintf(suffix, sizeof suffix, "actuator/%d/command", gpio);
    fp_inject(d, suffix, json);
}
#endif
