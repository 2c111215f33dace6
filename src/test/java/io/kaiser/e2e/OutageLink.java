package io.kaiser.e2e;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A link between devices and the broker with an outage the way a dead access point looks to a device:
 * {@link #down()} resets every open connection (the device notices at once) and from then on new connections get
 * nowhere (accepted, never answered: the device's connect attempt hangs instead of failing fast, so its circuit
 * breaker does not open); {@link #up()} resets those hanging attempts and forwards again. Unlike
 * {@link io.kaiser.support.TcpLink#cut()}, whose refused reconnects open the firmware's breaker for 30 s, the device
 * comes back within its normal backoff.
 */
final class OutageLink implements AutoCloseable {
    private final int targetPort;
    private final ServerSocket listener;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private final Set<Socket> hanging = ConcurrentHashMap.newKeySet();
    private volatile boolean down;

    OutageLink(int targetPort) {
        this.targetPort = targetPort;
        try {
            listener = new ServerSocket();
            listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        Thread acceptor = new Thread(this::accept, "outage-link-" + listener.getLocalPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void accept() {
        while (!listener.isClosed()) {
            try {
                Socket device = listener.accept();
                if (down) {
                    hanging.add(device);
                    continue;
                }
                Socket broker = new Socket();
                broker.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), targetPort), 2000);
                device.setTcpNoDelay(true);
                broker.setTcpNoDelay(true);
                open.add(device);
                open.add(broker);
                pump(device, broker);
                pump(broker, device);
            } catch (IOException e) {
                // listener closed or broker away: the device sees its connection fail
            }
        }
    }

    private void pump(Socket from, Socket to) {
        Thread t = new Thread(() -> {
            byte[] buffer = new byte[16384];
            try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                int n;
                while ((n = in.read(buffer)) >= 0) {
                    out.write(buffer, 0, n);
                    out.flush();
                }
            } catch (IOException e) {
                // one side closed
            } finally {
                reset(from);
                reset(to);
            }
        }, "outage-link-pump");
        t.setDaemon(true);
        t.start();
    }

    /** Resets every open connection; new ones hang until {@link #up()}. */
    void down() {
        down = true;
        open.forEach(this::reset);
    }

    /** Resets the hanging connection attempts and forwards new connections again. */
    void up() {
        down = false;
        hanging.forEach(this::reset);
    }

    String deviceUrl() {
        return "mqtt://127.0.0.1:" + listener.getLocalPort();
    }

    private void reset(Socket s) {
        open.remove(s);
        hanging.remove(s);
        try {
            s.setSoLinger(true, 0);
        } catch (IOException e) {
            // already closed
        }
        try {
            s.close();
        } catch (IOException e) {
            // nothing to do
        }
    }

    @Override
    public void close() {
        down();
        hanging.forEach(this::reset);
        try {
            listener.close();
        } catch (IOException e) {
            // nothing to do
        }
    }
}
