package io.kaiser.contract;

/**
 * A message or request that breaks the contract. Carries a short machine-readable reason code
 * ({@code invalid_json}, {@code schema_violation}, {@code esp_id_mismatch}, ...) and a sentence for people.
 * Never used for infrastructure failures: those must be retried, a rejection is final.
 */
public class KaiserRejection extends RuntimeException {
    private final String reasonCode;

    public KaiserRejection(String reasonCode, String message) {
        super(message, null, false, false);
        this.reasonCode = reasonCode;
    }

    public String getReasonCode() {
        return reasonCode;
    }
}
