package io.kaiser.ingest;

/** The database circuit breaker is open: the batch was not even tried. Not a sign of a bad message. */
public class CircuitOpenException extends IngestUnavailableException {
    public CircuitOpenException(String message) {
        super(message);
    }
}
