/*
 * Drivers for the ESP-IDF 5.x port: GPIO outputs, LEDC PWM (8-bit, shared timer), ADC oneshot,
 * a bit-banged 1-Wire bus for DS18B20 and SHT31 over the i2c_master driver (IDF >= 5.2).
 * Raw values are exactly what the core expects: DS18B20 in 1/16 degC, SHT31 16-bit ticks,
 * ADC 12-bit counts. Conversion and quality classes live in the core.
 */
#include "kaiser_drivers_esp32.h"

#include <string.h>

#include "driver/gpio.h"
#include "driver/i2c_master.h"
#include "driver/ledc.h"
#include "esp_adc/adc_oneshot.h"
#include "esp_log.h"
#include "esp_rom_sys.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

static const char *TAG = "kaiser_drv";

/* ------------------------------------------------------------------ GPIO */
static uint64_t s_outputs; /* pins already configured as outputs */

int kd_gpio_write(int gpio, bool level)
{
    if (gpio < 0 || gpio >= GPIO_NUM_MAX || !GPIO_IS_VALID_OUTPUT_GPIO(gpio)) {
        return -1;
    }
    if (!(s_outputs & (1ULL << gpio))) {
        gpio_reset_pin(gpio);
        if (gpio_set_direction(gpio, GPIO_MODE_OUTPUT) != ESP_OK) {
            return -1;
        }
        s_outputs |= 1ULL << gpio;
    }
    return gpio_set_level(gpio, level ? 1 : 0) == ESP_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ LEDC PWM */
static int8_t s_pwm_channel[GPIO_NUM_MAX];
static int s_pwm_next;
static bool s_pwm_timer;

int kd_pwm_write(int gpio, uint8_t duty)
{
    if (gpio < 0 || gpio >= GPIO_NUM_MAX || !GPIO_IS_VALID_OUTPUT_GPIO(gpio)) {
        return -1;
    }
    if (!s_pwm_timer) {
        ledc_timer_config_t t = {
            .speed_mode = LEDC_LOW_SPEED_MODE,
            .duty_resolution = LEDC_TIMER_8_BIT,
            .timer_num = LEDC_TIMER_0,
            .freq_hz = CONFIG_KAISER_PORT_ESP32_PWM_HZ,
            .clk_cfg = LEDC_AUTO_CLK,
        };
        if (ledc_timer_config(&t) != ESP_OK) {
            return -1;
        }
        memset(s_pwm_channel, -1, sizeof s_pwm_channel);
        s_pwm_timer = true;
    }
    if (s_pwm_channel[gpio] < 0) {
        if (s_pwm_next >= LEDC_CHANNEL_MAX) {
            ESP_LOGE(TAG, "no free LEDC channel for gpio %d", gpio);
            return -1; /* error 1031 PWM_CHANNEL_FULL is reported by the core as a set failure */
        }
        ledc_channel_config_t c = {
            .gpio_num = gpio,
            .speed_mode = LEDC_LOW_SPEED_MODE,
            .channel = (ledc_channel_t)s_pwm_next,
            .timer_sel = LEDC_TIMER_0,
            .duty = 0,
            .hpoint = 0,
        };
        if (ledc_channel_config(&c) != ESP_OK) {
            return -1;
        }
        s_pwm_channel[gpio] = (int8_t)s_pwm_next++;
    }
    ledc_channel_t ch = (ledc_channel_t)s_pwm_channel[gpio];
    if (ledc_set_duty(LEDC_LOW_SPEED_MODE, ch, duty) != ESP_OK) {
        return -1;
    }
    return ledc_update_duty(LEDC_LOW_SPEED_MODE, ch) == ESP_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ ADC oneshot */
static adc_oneshot_unit_handle_t s_adc[2];

static int adc_read(int gpio, int32_t *raw)
{
    adc_unit_t unit;
    adc_channel_t channel;
    if (adc_oneshot_io_to_channel(gpio, &unit, &channel) != ESP_OK) {
        return -1;
    }
    if (s_adc[unit] == NULL) {
        adc_oneshot_unit_init_cfg_t u = {.unit_id = unit};
        if (adc_oneshot_new_unit(&u, &s_adc[unit]) != ESP_OK) {
            return -1; /* ADC2 is unusable while Wi-Fi runs on the ESP32 */
        }
    }
    adc_oneshot_chan_cfg_t c = {.atten = ADC_ATTEN_DB_12, .bitwidth = ADC_BITWIDTH_12};
    if (adc_oneshot_config_channel(s_adc[unit], channel, &c) != ESP_OK) {
        return -1;
    }
    int v = 0;
    if (adc_oneshot_read(s_adc[unit], channel, &v) != ESP_OK) {
        return -1;
    }
    *raw = v;
    return 0;
}

/* ------------------------------------------------------------------ 1-Wire (bit-banged) */
static portMUX_TYPE s_ow_mux = portMUX_INITIALIZER_UNLOCKED;

static void ow_low(int pin) { gpio_set_direction(pin, GPIO_MODE_OUTPUT_OD); gpio_set_level(pin, 0); }
static void ow_release(int pin) { gpio_set_level(pin, 1); gpio_set_direction(pin, GPIO_MODE_INPUT); }

static bool ow_reset(int pin)
{
    ow_low(pin);
    esp_rom_delay_us(480);
    portENTER_CRITICAL(&s_ow_mux);
    ow_release(pin);
    esp_rom_delay_us(70);
    bool present = gpio_get_level(pin) == 0;
    portEXIT_CRITICAL(&s_ow_mux);
    esp_rom_delay_us(410);
    return present;
}

static void ow_write_bit(int pin, int bit)
{
    portENTER_CRITICAL(&s_ow_mux);
    ow_low(pin);
    esp_rom_delay_us(bit ? 6 : 60);
    ow_release(pin);
    portEXIT_CRITICAL(&s_ow_mux);
    esp_rom_delay_us(bit ? 64 : 10);
}

static int ow_read_bit(int pin)
{
    portENTER_CRITICAL(&s_ow_mux);
    ow_low(pin);
    esp_rom_delay_us(6);
    ow_release(pin);
    esp_rom_delay_us(9);
    int b = gpio_get_level(pin);
    portEXIT_CRITICAL(&s_ow_mux);
    esp_rom_delay_us(55);
    return b;
}

static void ow_write(int pin, uint8_t v)
{
    for (int i = 0; i < 8; i++) {
        ow_write_bit(pin, (v >> i) & 1);
    }
}

static uint8_t ow_read(int pin)
{
    uint8_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint8_t)(ow_read_bit(pin) << i);
    }
    return v;
}

static uint8_t crc8_maxim(const uint8_t *d, int n)
{
    uint8_t crc = 0;
    for (int i = 0; i < n; i++) {
        uint8_t in = d[i];
        for (int b = 0; b < 8; b++) {
            uint8_t mix = (crc ^ in) & 1;
            crc >>= 1;
            if (mix) {
                crc ^= 0x8C;
            }
            in >>= 1;
        }
    }
    return crc;
}

/* One DS18B20 per pin (skip ROM); 12-bit conversion takes up to 750 ms. */
static int ds18b20_read(int pin, int32_t *raw)
{
    gpio_set_pull_mode(pin, GPIO_PULLUP_ONLY);
    if (!ow_reset(pin)) {
        return -1;
    }
    ow_write(pin, 0xCC); /* skip ROM */
    ow_write(pin, 0x44); /* convert T */
    vTaskDelay(pdMS_TO_TICKS(750));
    if (!ow_reset(pin)) {
        return -1;
    }
    ow_write(pin, 0xCC);
    ow_write(pin, 0xBE); /* read scratchpad */
    uint8_t sp[9];
    for (int i = 0; i < 9; i++) {
        sp[i] = ow_read(pin);
    }
    if (crc8_maxim(sp, 8) != sp[8]) {
        return -1;
    }
    *raw = (int16_t)((uint16_t)sp[1] << 8 | sp[0]);
    return 0;
}

/* ------------------------------------------------------------------ SHT31 over I2C */
static i2c_master_bus_handle_t s_i2c;
static i2c_master_dev_handle_t s_sht31;
static int64_t s_sht_at_us;
static int32_t s_sht_t, s_sht_h;

static uint8_t crc8_sht(const uint8_t *d)
{
    uint8_t crc = 0xFF;
    for (int i = 0; i < 2; i++) {
        crc ^= d[i];
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x31) : (uint8_t)(crc << 1);
        }
    }
    return crc;
}

static int sht31_read(const char *type, int32_t *raw)
{
    if (s_i2c == NULL) {
        return -1;
    }
    int64_t now = esp_timer_get_time();
    if (s_sht_at_us == 0 || now - s_sht_at_us > 1000000) { /* one bus read serves both value types */
        if (s_sht31 == NULL) {
            i2c_device_config_t dc = {.dev_addr_length = I2C_ADDR_BIT_LEN_7, .device_address = 0x44,
                                      .scl_speed_hz = CONFIG_KAISER_PORT_ESP32_I2C_HZ};
            if (i2c_master_bus_add_device(s_i2c, &dc, &s_sht31) != ESP_OK) {
                return -1;
            }
        }
        const uint8_t cmd[2] = {0x24, 0x00}; /* single shot, high repeatability, no clock stretching */
        if (i2c_master_transmit(s_sht31, cmd, sizeof cmd, 50) != ESP_OK) {
            return -1;
        }
        vTaskDelay(pdMS_TO_TICKS(20));
        uint8_t r[6];
        if (i2c_master_receive(s_sht31, r, sizeof r, 50) != ESP_OK || crc8_sht(r) != r[2] || crc8_sht(r + 3) != r[5]) {
            return -1;
        }
        s_sht_t = (int32_t)((uint16_t)r[0] << 8 | r[1]);
        s_sht_h = (int32_t)((uint16_t)r[3] << 8 | r[4]);
        s_sht_at_us = now;
    }
    *raw = strcmp(type, "sht31_humidity") == 0 ? s_sht_h : s_sht_t;
    return 0;
}

/* ------------------------------------------------------------------ entry points */

int kd_sensor_read(int gpio, const char *value_type, int32_t *raw)
{
    if (strcmp(value_type, "ds18b20") == 0) {
        return ds18b20_read(gpio, raw);
    }
    if (strncmp(value_type, "sht31_", 6) == 0) {
        return sht31_read(value_type, raw);
    }
    return adc_read(gpio, raw);
}

esp_err_t kd_init(void)
{
    i2c_master_bus_config_t bc = {
        .i2c_port = I2C_NUM_0,
        .sda_io_num = CONFIG_KAISER_PORT_ESP32_I2C_SDA,
        .scl_io_num = CONFIG_KAISER_PORT_ESP32_I2C_SCL,
        .clk_source = I2C_CLK_SRC_DEFAULT,
        .glitch_ignore_cnt = 7,
        .flags.enable_internal_pullup = true,
    };
    esp_err_t err = i2c_new_master_bus(&bc, &s_i2c);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "I2C bus init failed: %s (SHT31 reads will fail)", esp_err_to_name(err));
        s_i2c = NULL;
    }
    return ESP_OK;
}
