package io.kaiser.ingest;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/** Unit test of the append-only ingest journal: order, checkpoint, segments, torn records, concurrency, waiting reads. */
class IngestJournalTest {
    @TempDir
    Path dir;

    static byte[] p(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static long append(IngestJournal j, int i) {
        return j.append("sensor-data", "kaiser/god/esp/ESP_" + i + "/sensor/4/data", 1, false, 1_000L + i, p("{\"i\":" + i + "}"));
    }

    static List<String> payloads(List<InboundMessage> messages) {
        return messages.stream().map(InboundMessage::payloadText).toList();
    }

    static List<Path> segments(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(f -> f.getFileName().toString().startsWith("segment-")).sorted().toList();
        }
    }

    @Test
    void should_read_records_in_append_order_with_all_fields() throws Exception {
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            long p0 = j.append("heartbeat", "kaiser/god/esp/ESP_1/system/heartbeat", 0, false, 111L, p("{\"a\":1}"));
            long p1 = j.append("will", "kaiser/god/esp/ESP_1/system/will", 1, true, 222L, p("{\"ü\":\"😀\"}"));
            long p2 = j.append("sensor-data", "kaiser/god/esp/ESP_1/sensor/4/data", 2, false, 333L, new byte[0]);
            assertThat(p0).isLessThan(p1);
            assertThat(p1).isLessThan(p2);
            List<InboundMessage> read = j.read(j.checkpoint(), 100, 0);
            assertThat(read).hasSize(3);
            InboundMessage m0 = read.get(0);
            assertThat(m0.position()).isEqualTo(p0);
            assertThat(m0.topicKey()).isEqualTo("heartbeat");
            assertThat(m0.topic()).isEqualTo("kaiser/god/esp/ESP_1/system/heartbeat");
            assertThat(m0.qos()).isZero();
            assertThat(m0.retained()).isFalse();
            assertThat(m0.receivedAt()).isEqualTo(111L);
            assertThat(m0.next()).isEqualTo(p1);
            InboundMessage m1 = read.get(1);
            assertThat(m1.retained()).isTrue();
            assertThat(m1.qos()).isEqualTo(1);
            assertThat(m1.payloadText()).isEqualTo("{\"ü\":\"😀\"}");
            assertThat(read.get(2).payload()).isEmpty();
            assertThat(read.get(2).next()).isEqualTo(j.end());
            // max limits the count; reading from the middle starts at that record
            assertThat(j.read(j.checkpoint(), 2, 0)).hasSize(2);
            assertThat(j.read(p1, 100, 0)).extracting(InboundMessage::position).containsExactly(p1, p2);
        }
    }

    @Test
    void should_read_records_across_read_chunks_including_one_larger_than_a_chunk() throws Exception {
        try (IngestJournal j = new IngestJournal(dir, 64L << 20)) {
            byte[] big = new byte[600 * 1024];
            java.util.Arrays.fill(big, (byte) 'x');
            List<Long> positions = new java.util.ArrayList<>();
            for (int i = 0; i < 3000; i++) {
                positions.add(append(j, i));
                if (i == 1500) {
                    positions.add(j.append("sensor-data", "kaiser/god/esp/ESP_1/sensor/4/data", 1, false, 1L, big));
                }
            }
            List<InboundMessage> read = new java.util.ArrayList<>();
            long pos = j.checkpoint();
            while (pos < j.end()) {
                List<InboundMessage> batch = j.read(pos, 1000, 0);
                read.addAll(batch);
                pos = batch.get(batch.size() - 1).next();
            }
            assertThat(read).extracting(InboundMessage::position).containsExactlyElementsOf(positions);
            assertThat(read.get(1501).payload()).isEqualTo(big);
            assertThat(read.get(1502).payloadText()).isEqualTo("{\"i\":1501}");
            assertThat(read.get(3000).next()).isEqualTo(j.end());
        }
    }

    @Test
    void should_replay_exactly_the_uncommitted_records_after_reopen() throws Exception {
        long committedUpTo;
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            for (int i = 0; i < 10; i++) {
                append(j, i);
            }
            List<InboundMessage> all = j.read(j.checkpoint(), 100, 0);
            committedUpTo = all.get(5).next();
            j.commit(committedUpTo);
            assertThat(j.checkpoint()).isEqualTo(committedUpTo);
        }
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            assertThat(j.checkpoint()).isEqualTo(committedUpTo);
            assertThat(payloads(j.read(j.checkpoint(), 100, 0)))
                    .containsExactly("{\"i\":6}", "{\"i\":7}", "{\"i\":8}", "{\"i\":9}");
            assertThat(j.backlogBytes()).isEqualTo(j.end() - committedUpTo);
            // appends continue after the existing records
            long p = append(j, 10);
            assertThat(p).isEqualTo(j.read(j.checkpoint(), 100, 0).get(3).next());
            assertThat(payloads(j.read(j.checkpoint(), 100, 0))).hasSize(5).endsWith("{\"i\":10}");
        }
    }

    @Test
    void should_replay_from_the_last_written_checkpoint_after_a_crash() throws Exception {
        IngestJournal crashed = new IngestJournal(dir, 200);
        try {
            for (int i = 0; i < 40; i++) {
                append(crashed, i);
            }
            List<InboundMessage> all = crashed.read(crashed.checkpoint(), 100, 0);
            long written = all.get(9).next();
            crashed.commit(written);
            crashed.sync();
            List<Path> segmentsAtSync = segments(dir);
            // stored, but the process dies before the flusher writes the checkpoint again
            crashed.commit(all.get(29).next());
            try (IngestJournal reopened = new IngestJournal(dir, 200)) {
                assertThat(reopened.checkpoint()).isEqualTo(written);
                assertThat(segments(dir)).isEqualTo(segmentsAtSync);
                assertThat(payloads(reopened.read(reopened.checkpoint(), 100, 0))).hasSize(30).first().isEqualTo("{\"i\":10}");
            }
        } finally {
            crashed.close();
        }
    }

    @Test
    void should_move_the_checkpoint_and_delete_fully_processed_segments() throws Exception {
        try (IngestJournal j = new IngestJournal(dir, 200)) {
            for (int i = 0; i < 40; i++) {
                append(j, i);
            }
            List<Path> before = segments(dir);
            assertThat(before).as("a tiny segment size rolls segments").hasSizeGreaterThan(3);
            List<InboundMessage> all = new ArrayList<>();
            long pos = j.checkpoint();
            while (true) {
                List<InboundMessage> batch = j.read(pos, 7, 0);
                if (batch.isEmpty()) {
                    break;
                }
                all.addAll(batch);
                pos = batch.get(batch.size() - 1).next();
            }
            assertThat(all).hasSize(40);
            assertThat(payloads(all)).first().isEqualTo("{\"i\":0}");
            assertThat(payloads(all)).last().isEqualTo("{\"i\":39}");

            long half = all.get(25).next();
            j.commit(half);
            assertThat(j.checkpoint()).isEqualTo(half);
            assertThat(segments(dir)).as("segments are deleted when the checkpoint is written, not before").isEqualTo(before);
            j.sync();
            List<Path> afterHalf = segments(dir);
            assertThat(afterHalf).hasSizeLessThan(before.size()).hasSizeGreaterThan(0);
            // the records after the checkpoint are still readable
            assertThat(payloads(j.read(j.checkpoint(), 100, 0))).first().isEqualTo("{\"i\":26}");

            j.commit(j.end());
            j.sync();
            assertThat(segments(dir)).as("only the active segment is left").hasSize(1);
            assertThat(j.backlogBytes()).isZero();
            assertThat(j.read(j.checkpoint(), 100, 0)).isEmpty();
        }
        try (IngestJournal j = new IngestJournal(dir, 200)) {
            assertThat(j.read(j.checkpoint(), 100, 0)).isEmpty();
            append(j, 99);
            assertThat(payloads(j.read(j.checkpoint(), 100, 0))).containsExactly("{\"i\":99}");
        }
    }

    @Test
    void should_truncate_a_torn_last_record_on_reopen_and_continue_appending() throws Exception {
        long endBefore;
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            for (int i = 0; i < 3; i++) {
                append(j, i);
            }
            endBefore = j.end();
        }
        Path segment = segments(dir).get(0);
        // a half-written record: a header announcing 200 bytes, followed by 10
        try (FileChannel ch = FileChannel.open(segment, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(18).putInt(200).putInt(12345).put(new byte[10]);
            b.flip();
            ch.write(b);
        }
        assertThat(Files.size(segment)).isEqualTo(endBefore + 18);
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            assertThat(j.end()).isEqualTo(endBefore);
            assertThat(Files.size(segment)).isEqualTo(endBefore);
            assertThat(payloads(j.read(j.checkpoint(), 100, 0))).containsExactly("{\"i\":0}", "{\"i\":1}", "{\"i\":2}");
            append(j, 3);
            assertThat(payloads(j.read(j.checkpoint(), 100, 0))).containsExactly("{\"i\":0}", "{\"i\":1}", "{\"i\":2}", "{\"i\":3}");
        }
    }

    @Test
    void should_truncate_a_complete_but_corrupted_last_record() throws Exception {
        long secondPos;
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            append(j, 0);
            secondPos = append(j, 1);
        }
        Path segment = segments(dir).get(0);
        try (FileChannel ch = FileChannel.open(segment, StandardOpenOption.WRITE)) {
            // flip a payload byte of the last record: its CRC no longer matches
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {'X'}), ch.size() - 2);
        }
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            assertThat(j.end()).isEqualTo(secondPos);
            assertThat(payloads(j.read(j.checkpoint(), 100, 0))).containsExactly("{\"i\":0}");
        }
    }

    @Test
    void should_lose_nothing_when_several_threads_append_concurrently() throws Exception {
        int threads = 8;
        int perThread = 500;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        CountDownLatch go = new CountDownLatch(1);
        try (IngestJournal j = new IngestJournal(dir, 16 * 1024)) {
            List<Future<List<Long>>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                futures.add(pool.submit(() -> {
                    go.await();
                    List<Long> positions = new ArrayList<>();
                    for (int i = 0; i < perThread; i++) {
                        positions.add(j.append("sensor-data", "t/" + thread, 1, false, i, p(thread + ":" + i)));
                    }
                    return positions;
                }));
            }
            go.countDown();
            Set<Long> positions = new HashSet<>();
            for (Future<List<Long>> f : futures) {
                positions.addAll(f.get(30, TimeUnit.SECONDS));
            }
            assertThat(positions).as("unique positions").hasSize(threads * perThread);

            List<InboundMessage> all = new ArrayList<>();
            long pos = j.checkpoint();
            while (true) {
                List<InboundMessage> batch = j.read(pos, 300, 0);
                if (batch.isEmpty()) {
                    break;
                }
                all.addAll(batch);
                pos = batch.get(batch.size() - 1).next();
            }
            assertThat(all).hasSize(threads * perThread);
            assertThat(all).extracting(InboundMessage::position).doesNotHaveDuplicates().isSorted();
            assertThat(new HashSet<>(all.stream().map(InboundMessage::position).toList())).isEqualTo(positions);
            // each thread's records stay in its own order and intact
            for (int t = 0; t < threads; t++) {
                String prefix = t + ":";
                List<String> mine = payloads(all).stream().filter(s -> s.startsWith(prefix)).toList();
                assertThat(mine).hasSize(perThread);
                for (int i = 0; i < perThread; i++) {
                    assertThat(mine.get(i)).isEqualTo(prefix + i);
                }
            }
        } finally {
            pool.shutdownNow();
        }
        // and a reopen sees the same records (no torn record in the middle)
        try (IngestJournal j = new IngestJournal(dir, 16 * 1024)) {
            int count = 0;
            long pos = j.checkpoint();
            while (true) {
                List<InboundMessage> batch = j.read(pos, 1000, 0);
                if (batch.isEmpty()) {
                    break;
                }
                count += batch.size();
                pos = batch.get(batch.size() - 1).next();
            }
            assertThat(count).isEqualTo(threads * perThread);
        }
    }

    @Test
    void should_wait_for_data_and_return_empty_on_timeout() throws Exception {
        try (IngestJournal j = new IngestJournal(dir, 1 << 20)) {
            long start = System.nanoTime();
            assertThat(j.read(j.checkpoint(), 10, 200)).isEmpty();
            long waitedMs = (System.nanoTime() - start) / 1_000_000;
            assertThat(waitedMs).as("waited about the timeout").isBetween(150L, 5_000L);

            ExecutorService pool = Executors.newSingleThreadExecutor();
            try {
                long from = j.end();
                Future<List<InboundMessage>> reader = pool.submit(() -> j.read(from, 10, 10_000));
                // the reader is waiting; an append wakes it long before its timeout
                long t0 = System.nanoTime();
                org.awaitility.Awaitility.await().pollDelay(java.time.Duration.ofMillis(100)).until(() -> !reader.isDone());
                append(j, 42);
                List<InboundMessage> got = reader.get(5, TimeUnit.SECONDS);
                assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(5_000);
                assertThat(payloads(got)).containsExactly("{\"i\":42}");
            } finally {
                pool.shutdownNow();
            }
            // with no wait the read returns at once
            long t1 = System.nanoTime();
            assertThat(j.read(j.end(), 10, 0)).isEmpty();
            assertThat((System.nanoTime() - t1) / 1_000_000).isLessThan(100);
        }
    }
}
