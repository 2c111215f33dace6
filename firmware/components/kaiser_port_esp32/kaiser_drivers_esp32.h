/* Hardware drivers behind the port (private to this component). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "esp_err.h"

esp_err_t kd_init(void);
int kd_gpio_write(int gpio, bool level);
int kd_pwm_write(int gpio, uint8_t duty);
/* value_type: ds18b20 | sht31_temp | sht31_humidity | anything else = ADC (raw 0..4095). */
int kd_sensor_read(int gpio, const char *value_type, int32_t *raw);
