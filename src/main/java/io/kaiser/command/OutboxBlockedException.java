package io.kaiser.command;

/** An outbox round stops at the first command that could not be published, so the ones after it keep their order. */
public final class OutboxBlockedException extends Exception {
    public OutboxBlockedException(String message) {
        super(message);
    }
}
