package io.kaiser.ingest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.CRC32C;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Append-only local journal of received MQTT messages: the point where a message becomes durable.
 *
 * <p>The MQTT callback thread only appends (one {@code write}, no parsing, no database), then returns, so the
 * client acknowledges the message to the broker after it is on disk. A single drainer reads the journal in
 * order, so every device's messages are processed in the order they arrived. The drainer's checkpoint is a
 * small file, written by the flusher ({@link #sync()}); on restart everything after it is replayed and the
 * database's unique keys drop what was already stored. A killed process loses nothing it acknowledged; data
 * waiting for {@code fsync} can be lost only with the machine's power
 * ({@code kaiser.ingest.journal.fsync-interval-ms} bounds that window).
 *
 * <p>Record layout: {@code int length | int crc32c | long receivedAt | byte qos | byte retained |
 * short keyLen | key | short topicLen | topic | int payloadLen | payload}; length covers everything after crc.
 */
public final class IngestJournal implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(IngestJournal.class);
    private static final String SEGMENT_PREFIX = "segment-";
    private static final String SEGMENT_SUFFIX = ".log";
    private static final int HEADER = 8;
    private static final int READ_CHUNK = 256 * 1024;

    private final Path dir;
    private final String origin;
    private final long segmentBytes;
    private final Path checkpointFile;
    private final ReentrantLock appendLock = new ReentrantLock();
    private final Condition appended = appendLock.newCondition();
    private final TreeMap<Long, FileChannel> segments = new TreeMap<>();
    private final ByteBuffer writeBuffer = ByteBuffer.allocateDirect(512 * 1024);
    private volatile long end;
    private volatile long checkpoint;
    private long persistedCheckpoint;
    private volatile boolean dirty;
    private long activeBase;

    public IngestJournal(Path dir, long segmentBytes) {
        this(dir, segmentBytes, "local");
    }

    /** @param origin name of the server instance owning this journal (part of every message's dedupe key) */
    public IngestJournal(Path dir, long segmentBytes, String origin) {
        this.origin = origin;
        this.dir = dir;
        this.segmentBytes = segmentBytes;
        this.checkpointFile = dir.resolve("checkpoint");
        try {
            Files.createDirectories(dir);
            this.checkpoint = readCheckpoint();
            openSegments();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open ingest journal in " + dir, e);
        }
        LOG.info("Ingest journal {}: checkpoint {}, end {} ({} bytes to replay)", dir, checkpoint, end, end - checkpoint);
    }

    private long readCheckpoint() throws IOException {
        if (!Files.exists(checkpointFile)) {
            return -1;
        }
        String text = Files.readString(checkpointFile).trim();
        return text.isEmpty() ? -1 : Long.parseLong(text);
    }

    private void openSegments() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                String name = p.getFileName().toString();
                if (name.startsWith(SEGMENT_PREFIX) && name.endsWith(SEGMENT_SUFFIX)) {
                    long base = Long.parseLong(name.substring(SEGMENT_PREFIX.length(), name.length() - SEGMENT_SUFFIX.length()));
                    segments.put(base, FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE));
                }
            }
        }
        if (segments.isEmpty()) {
            long base = Math.max(0, checkpoint);
            segments.put(base, openSegment(base));
        }
        activeBase = segments.lastKey();
        FileChannel active = segments.get(activeBase);
        long validLength = scanValidLength(active);
        if (validLength < active.size()) {
            LOG.warn("Ingest journal: truncating a torn record at the end of segment {} ({} -> {} bytes)", activeBase, active.size(), validLength);
            active.truncate(validLength);
        }
        end = activeBase + validLength;
        if (checkpoint < 0) {
            checkpoint = segments.firstKey();
        }
        persistedCheckpoint = checkpoint;
    }

    private static long scanValidLength(FileChannel ch) throws IOException {
        long pos = 0;
        long size = ch.size();
        ByteBuffer header = ByteBuffer.allocate(HEADER);
        while (pos + HEADER <= size) {
            header.clear();
            ch.read(header, pos);
            header.flip();
            int len = header.getInt();
            int crc = header.getInt();
            if (len <= 0 || pos + HEADER + len > size) {
                break;
            }
            ByteBuffer body = ByteBuffer.allocate(len);
            ch.read(body, pos + HEADER);
            CRC32C c = new CRC32C();
            c.update(body.array(), 0, len);
            if ((int) c.getValue() != crc) {
                break;
            }
            pos += HEADER + len;
        }
        return pos;
    }

    private FileChannel openSegment(long base) throws IOException {
        Path p = dir.resolve(String.format("%s%020d%s", SEGMENT_PREFIX, base, SEGMENT_SUFFIX));
        return FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    /** Appends one message; returns its position. Safe to call from several MQTT callback threads. */
    public long append(String topicKey, String topic, int qos, boolean retained, long receivedAt, byte[] payload) {
        byte[] key = topicKey.getBytes(StandardCharsets.UTF_8);
        byte[] t = topic.getBytes(StandardCharsets.UTF_8);
        int len = 8 + 1 + 1 + 2 + key.length + 2 + t.length + 4 + payload.length;
        appendLock.lock();
        try {
            if (end - activeBase >= segmentBytes) {
                roll();
            }
            ByteBuffer buf = len + HEADER <= writeBuffer.capacity() ? writeBuffer.clear() : ByteBuffer.allocate(len + HEADER);
            buf.putInt(len).putInt(0).putLong(receivedAt).put((byte) qos).put((byte) (retained ? 1 : 0))
                    .putShort((short) key.length).put(key).putShort((short) t.length).put(t).putInt(payload.length).put(payload);
            buf.flip();
            CRC32C crc = new CRC32C();
            ByteBuffer body = buf.duplicate().position(HEADER);
            crc.update(body);
            buf.putInt(4, (int) crc.getValue());
            long position = end;
            FileChannel ch = segments.get(activeBase);
            long at = position - activeBase;
            while (buf.hasRemaining()) {
                at += ch.write(buf, at);
            }
            end = position + HEADER + len;
            dirty = true;
            appended.signalAll();
            return position;
        } catch (IOException e) {
            throw new UncheckedIOException("ingest journal append failed", e);
        } finally {
            appendLock.unlock();
        }
    }

    private void roll() throws IOException {
        segments.get(activeBase).force(false);
        activeBase = end;
        segments.put(activeBase, openSegment(activeBase));
    }

    /** Flushes appended records to the disk (called periodically by the flusher). */
    public void force() {
        if (!dirty) {
            return;
        }
        dirty = false;
        try {
            FileChannel ch;
            appendLock.lock();
            try {
                ch = segments.get(activeBase);
            } finally {
                appendLock.unlock();
            }
            ch.force(false);
        } catch (IOException e) {
            LOG.warn("Ingest journal fsync failed: {}", e.getMessage());
        }
    }

    /**
     * Reads up to {@code max} records starting at {@code from}, waiting up to {@code waitMillis} for the first.
     */
    public List<InboundMessage> read(long from, int max, long waitMillis) throws InterruptedException {
        if (from >= end && waitMillis > 0) {
            appendLock.lock();
            try {
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMillis);
                while (from >= end) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        break;
                    }
                    appended.awaitNanos(left);
                }
            } finally {
                appendLock.unlock();
            }
        }
        List<InboundMessage> out = new ArrayList<>(Math.min(max, 1024));
        long pos = from;
        long limit = end;
        int chunkSize = READ_CHUNK;
        ByteBuffer chunk = null;
        try {
            // records are read a chunk at a time (one pread for many records), never past the end seen on entry
            while (out.size() < max && pos < limit) {
                long base;
                FileChannel ch;
                Long nextBase;
                appendLock.lock();
                try {
                    Map.Entry<Long, FileChannel> seg = segments.floorEntry(pos);
                    if (seg == null) {
                        throw new IllegalStateException("journal position " + pos + " is before the oldest segment");
                    }
                    base = seg.getKey();
                    ch = seg.getValue();
                    nextBase = segments.higherKey(base);
                } finally {
                    appendLock.unlock();
                }
                // a rolled segment ends where the next one begins
                long segmentLimit = (nextBase == null ? limit : Math.min(limit, nextBase)) - base;
                long at = pos - base;
                if (at >= segmentLimit) {
                    if (nextBase == null) {
                        break;
                    }
                    pos = nextBase;
                    continue;
                }
                int want = (int) Math.min(segmentLimit - at, chunkSize);
                if (chunk == null || chunk.capacity() < want) {
                    chunk = ByteBuffer.allocate(chunkSize);
                }
                chunk.clear().limit(want);
                readFully(ch, chunk, at);
                chunk.flip();
                while (out.size() < max && chunk.remaining() >= HEADER) {
                    int start = chunk.position();
                    int len = chunk.getInt(start);
                    if (chunk.remaining() < HEADER + len) {
                        break;
                    }
                    chunk.position(start + HEADER);
                    long receivedAt = chunk.getLong();
                    int qos = chunk.get();
                    boolean retained = chunk.get() == 1;
                    String key = string(chunk, chunk.getShort());
                    String topic = string(chunk, chunk.getShort());
                    byte[] payload = new byte[chunk.getInt()];
                    chunk.get(payload);
                    chunk.position(start + HEADER + len);
                    long position = pos;
                    pos += HEADER + len;
                    out.add(new InboundMessage(position, key, topic, qos, retained, receivedAt, payload, pos, origin));
                }
                if (chunk.position() == 0 && out.size() < max) {
                    int record = HEADER + chunk.getInt(0);
                    if (record <= want) {
                        throw new IllegalStateException("journal record at " + pos + " is cut short");
                    }
                    // a record larger than the chunk: read again with room for it
                    chunkSize = record;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("ingest journal read failed", e);
        }
        return out;
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long at) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, at + buf.position());
            if (n < 0) {
                throw new IOException("unexpected end of journal segment");
            }
        }
    }

    private static String string(ByteBuffer b, int len) {
        byte[] bytes = new byte[len];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** Position of the next record the drainer has to process. */
    public long checkpoint() {
        return checkpoint;
    }

    /** Position after the last appended record. */
    public long end() {
        return end;
    }

    /**
     * Records that everything before {@code position} is stored. Only in memory: {@link #sync()} writes it to the
     * checkpoint file and deletes the segments before it, off the drainer's path. A crash before that replays the
     * batches since the last written checkpoint, and the database's unique keys drop what was already stored.
     */
    public void commit(long position) {
        checkpoint = position;
    }

    /** Flushes appended records to the disk, then writes the checkpoint (called periodically by the flusher). */
    public void sync() {
        force();
        persistCheckpoint();
    }

    /**
     * Writes the checkpoint to its file (written, synced, renamed over the old one) and then deletes the segments
     * wholly before it: a segment is never deleted while the file on disk still points into it.
     */
    synchronized void persistCheckpoint() {
        long position = checkpoint;
        if (position == persistedCheckpoint) {
            return;
        }
        try {
            Path tmp = dir.resolve("checkpoint.tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer text = ByteBuffer.wrap(Long.toString(position).getBytes(StandardCharsets.US_ASCII));
                while (text.hasRemaining()) {
                    ch.write(text);
                }
                ch.force(false);
            }
            Files.move(tmp, checkpointFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            persistedCheckpoint = position;
            deleteProcessedSegments(position);
        } catch (IOException e) {
            LOG.warn("Ingest journal checkpoint write failed (replay will dedupe): {}", e.getMessage());
        }
    }

    private void deleteProcessedSegments(long position) throws IOException {
        appendLock.lock();
        try {
            while (segments.size() > 1) {
                long first = segments.firstKey();
                long second = segments.higherKey(first);
                if (second > position) {
                    break;
                }
                segments.remove(first).close();
                Files.deleteIfExists(dir.resolve(String.format("%s%020d%s", SEGMENT_PREFIX, first, SEGMENT_SUFFIX)));
            }
        } finally {
            appendLock.unlock();
        }
    }

    /** Bytes received but not yet stored in the database. */
    public long backlogBytes() {
        return end - checkpoint;
    }

    @Override
    public void close() {
        persistCheckpoint();
        appendLock.lock();
        try {
            for (FileChannel ch : segments.values()) {
                try {
                    ch.force(false);
                    ch.close();
                } catch (IOException e) {
                    LOG.warn("closing journal segment: {}", e.getMessage());
                }
            }
            segments.clear();
        } finally {
            appendLock.unlock();
        }
    }
}
