package io.kaiser.mqtt;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

/**
 * TLS to the broker from PEM files, with plain JDK classes: a CA bundle to trust (empty: the JDK's default trust
 * store), optionally a client certificate chain and its unencrypted PKCS#8 key ({@code -----BEGIN PRIVATE KEY-----},
 * as {@code openssl genpkey} writes it) for brokers that require client certificates.
 */
public final class MqttTls {
    private static final Pattern PEM_KEY = Pattern.compile(
            "-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");

    private MqttTls() {
    }

    /** {@code mqtts://host:port} is the usual name for MQTT over TLS; Paho calls it {@code ssl://}. */
    public static String normalizeUrl(String url) {
        if (url == null) {
            return null;
        }
        String u = url.trim();
        return u.regionMatches(true, 0, "mqtts://", 0, 8) ? "ssl://" + u.substring(8) : u;
    }

    /** True for URLs that Paho opens over TLS. */
    public static boolean isTls(String url) {
        String u = normalizeUrl(url);
        return u != null && (u.regionMatches(true, 0, "ssl://", 0, 6) || u.regionMatches(true, 0, "wss://", 0, 6));
    }

    /**
     * An SSLSocketFactory trusting the CA file (or the JDK defaults when caFile is blank) and presenting the client
     * certificate when certFile and keyFile are both given.
     */
    public static SSLSocketFactory socketFactory(String caFile, String certFile, String keyFile) {
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            if (blank(caFile)) {
                tmf.init((KeyStore) null);
            } else {
                KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
                trust.load(null, null);
                List<Certificate> cas = certificates(Path.of(caFile));
                if (cas.isEmpty()) {
                    throw new IllegalArgumentException("kaiser.mqtt.tls.ca-file " + caFile + " holds no PEM certificate");
                }
                for (int i = 0; i < cas.size(); i++) {
                    trust.setCertificateEntry("ca-" + i, cas.get(i));
                }
                tmf.init(trust);
            }
            KeyManagerFactory kmf = null;
            if (!blank(certFile) || !blank(keyFile)) {
                if (blank(certFile) || blank(keyFile)) {
                    throw new IllegalArgumentException("kaiser.mqtt.tls.cert-file and kaiser.mqtt.tls.key-file go together");
                }
                List<Certificate> chain = certificates(Path.of(certFile));
                if (chain.isEmpty()) {
                    throw new IllegalArgumentException("kaiser.mqtt.tls.cert-file " + certFile + " holds no PEM certificate");
                }
                PrivateKey key = privateKey(Path.of(keyFile));
                char[] pass = new char[0];
                KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
                ks.load(null, null);
                ks.setKeyEntry("client", key, pass, chain.toArray(new Certificate[0]));
                kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(ks, pass);
            }
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
            return ctx.getSocketFactory();
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException("MQTT TLS setup failed: " + e.getMessage(), e);
        }
    }

    static List<Certificate> certificates(Path pem) throws IOException, GeneralSecurityException {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        try (InputStream in = Files.newInputStream(pem)) {
            return new ArrayList<>(cf.generateCertificates(in));
        }
    }

    static PrivateKey privateKey(Path pem) throws IOException, GeneralSecurityException {
        String text = Files.readString(pem, StandardCharsets.US_ASCII);
        Matcher m = PEM_KEY.matcher(text);
        if (!m.find()) {
            throw new IllegalArgumentException("kaiser.mqtt.tls.key-file " + pem
                    + " is not an unencrypted PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----); convert it with "
                    + "openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pk8.pem");
        }
        byte[] der = Base64.getMimeDecoder().decode(m.group(1));
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
        InvalidKeySpecException last = null;
        for (String algorithm : List.of("RSA", "EC", "Ed25519", "EdDSA")) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(spec);
            } catch (InvalidKeySpecException | java.security.NoSuchAlgorithmException e) {
                if (e instanceof InvalidKeySpecException ike) {
                    last = ike;
                }
            }
        }
        throw new IllegalArgumentException("unsupported key type in " + pem, last);
    }

    private static boolean blank(String s) {
        return s == null || s.isBlank();
    }
}
