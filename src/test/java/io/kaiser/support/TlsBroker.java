package io.kaiser.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

/**
 * A Mosquitto of the test's own with a TLS listener on a free port, and the certificates for it made with openssl
 * in a temp dir: a CA, a server certificate for IP:127.0.0.1 and DNS:localhost signed by it, and a second,
 * unrelated CA ({@link #otherCa()}) to show that a wrong trust anchor does not connect. Keys are PKCS#8.
 * Files are world-readable because Mosquitto started as root drops to the user mosquitto.
 */
public final class TlsBroker implements AutoCloseable {
    private final int port;
    private final int mtlsPort;
    private final Path dir;
    private final MosquittoProcess mosquitto;

    public TlsBroker() {
        this.port = FreePorts.next();
        this.mtlsPort = FreePorts.next();
        try {
            dir = Files.createTempDirectory("kaiser-tls-broker-");
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ca.key");
            openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=Kaiser Test CA", "-out", "ca.crt");
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "other-ca.key");
            openssl("req", "-x509", "-new", "-key", "other-ca.key", "-sha256", "-days", "2", "-subj", "/CN=Some Other CA", "-out", "other-ca.crt");
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "server.key");
            openssl("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr");
            Files.writeString(dir.resolve("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    + "extendedKeyUsage=serverAuth\n");
            openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                    "-days", "2", "-sha256", "-extfile", "server.ext", "-out", "server.crt");
            // a client certificate (PKCS#8 key) for the listener that requires one
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "client.key");
            openssl("req", "-new", "-key", "client.key", "-subj", "/CN=kaiser-server", "-out", "client.csr");
            Files.writeString(dir.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
            openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                    "-days", "2", "-sha256", "-extfile", "client.ext", "-out", "client.crt");
            String tls = """
                    cafile %s
                    certfile %s
                    keyfile %s
                    tls_version tlsv1.2
                    """.formatted(dir.resolve("ca.crt"), dir.resolve("server.crt"), dir.resolve("server.key"));
            Files.writeString(dir.resolve("mosquitto.conf"), "allow_anonymous true\n"
                    + "listener " + port + " 127.0.0.1\n" + tls
                    + "listener " + mtlsPort + " 127.0.0.1\n" + tls + "require_certificate true\n");
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        mosquitto = new MosquittoProcess(dir.resolve("mosquitto.conf"), dir.resolve("mosquitto.log"), port);
    }

    private void openssl(String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        try {
            Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) {
                throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
            }
        } catch (IOException e) {
            throw new IllegalStateException("openssl is not installed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    public TlsBroker start() {
        mosquitto.start();
        return this;
    }

    /** The URL in the usual spelling; the server maps it to Paho's ssl://. */
    public String url() {
        return "mqtts://127.0.0.1:" + port;
    }

    /** The same broker in Paho's spelling, for test clients that are not the server. */
    public String pahoUrl() {
        return "ssl://127.0.0.1:" + port;
    }

    /** The listener that requires a client certificate signed by {@link #ca()}. */
    public String mtlsUrl() {
        return "mqtts://127.0.0.1:" + mtlsPort;
    }

    public Path clientCert() {
        return dir.resolve("client.crt");
    }

    public Path clientKey() {
        return dir.resolve("client.key");
    }

    public Path ca() {
        return dir.resolve("ca.crt");
    }

    /** A PKCS#8 key and a certificate chain (the broker's own), to check that client key material loads. */
    public Path serverCert() {
        return dir.resolve("server.crt");
    }

    public Path serverKey() {
        return dir.resolve("server.key");
    }

    public Path otherCa() {
        return dir.resolve("other-ca.crt");
    }

    public String log() {
        try {
            return Files.readString(dir.resolve("mosquitto.log"));
        } catch (IOException e) {
            return "";
        }
    }

    @Override
    public void close() {
        mosquitto.stop();
    }
}
