package io.kaiser.support;

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
 * A TCP link between devices and the broker that a test can break the way Wi-Fi breaks: {@link #cut()} resets
 * every connection and refuses new ones (the device notices at once), {@link #blackhole()} keeps today's sockets
 * open but moves no more bytes on them (nobody notices until a keepalive runs out; a new connection works, as
 * after a Wi-Fi roam), {@link #unreachable()} is a dead access point (open connections reset, new connection attempts
 * hang unanswered, so the firmware's circuit breaker does not open on refusals as it does after {@link #cut()}),
 * {@link #restore()} heals it.
 */
public final class TcpLink implements AutoCloseable {
    private enum State { UP, CUT, UNREACHABLE }

    private final int targetPort;
    private final ServerSocket listener;
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private final Set<Socket> held = ConcurrentHashMap.newKeySet();
    private final Set<Socket> hanging = ConcurrentHashMap.newKeySet();
    private volatile State state = State.UP;

    public TcpLink(int targetPort) {
        this.targetPort = targetPort;
        try {
            listener = new ServerSocket();
            listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 1024);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        Thread acceptor = new Thread(this::accept, "tcp-link-" + listener.getLocalPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void accept() {
        while (!listener.isClosed()) {
            try {
                Socket device = listener.accept();
                if (state == State.CUT) {
                    device.setSoLinger(true, 0);
                    device.close();
                    continue;
                }
                if (state == State.UNREACHABLE) {
                    hanging.add(device);
                    continue;
                }
                Socket broker = new Socket();
                broker.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), targetPort), 2000);
                device.setTcpNoDelay(true);
                broker.setTcpNoDelay(true);
                sockets.add(device);
                sockets.add(broker);
                pump(device, broker);
                pump(broker, device);
            } catch (IOException e) {
                // listener closed, or the broker is down: the device sees its connection fail
            }
        }
    }

    private void pump(Socket from, Socket to) {
        Thread t = new Thread(() -> {
            byte[] buffer = new byte[16384];
            try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                int n;
                while ((n = in.read(buffer)) >= 0) {
                    while (held.contains(from) && !from.isClosed()) {
                        java.util.concurrent.locks.LockSupport.parkNanos(10_000_000);
                    }
                    if (state == State.CUT) {
                        break;
                    }
                    out.write(buffer, 0, n);
                    out.flush();
                }
            } catch (IOException e) {
                // one side closed
            } finally {
                closeQuietly(from);
                closeQuietly(to);
            }
        }, "tcp-link-pump");
        t.setDaemon(true);
        t.start();
    }

    /** Resets every open connection and refuses new ones until {@link #restore()}. */
    public void cut() {
        state = State.CUT;
        resetAll(sockets);
    }

    /** Resets every open connection; new connection attempts hang unanswered until {@link #restore()}. */
    public void unreachable() {
        state = State.UNREACHABLE;
        resetAll(sockets);
    }

    private void resetAll(Set<Socket> set) {
        for (Socket s : set) {
            try {
                s.setSoLinger(true, 0);
            } catch (IOException e) {
                // already closed
            }
            closeQuietly(s);
        }
    }

    /** The connections open now stay open but carry nothing more, in either direction; new ones work. */
    public void blackhole() {
        held.addAll(sockets);
    }

    /**
     * Forwards new connections again; held connections and hanging attempts are reset (what they held back would
     * arrive stale).
     */
    public void restore() {
        resetAll(held);
        resetAll(hanging);
        state = State.UP;
    }

    public int port() {
        return listener.getLocalPort();
    }

    public String deviceUrl() {
        return "mqtt://127.0.0.1:" + port();
    }

    private void closeQuietly(Socket s) {
        sockets.remove(s);
        held.remove(s);
        hanging.remove(s);
        try {
            s.close();
        } catch (IOException e) {
            // nothing to do
        }
    }

    @Override
    public void close() {
        cut();
        resetAll(held);
        resetAll(hanging);
        try {
            listener.close();
        } catch (IOException e) {
            // nothing to do
        }
    }
}
