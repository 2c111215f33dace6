package io.kaiser.db;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;

import javax.sql.DataSource;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import org.flywaydb.core.Flyway;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The PostgreSQL connection pool and its schema. The pool starts even when the database is down (the server
 * then runs degraded and ingest holds messages in the journal); the migration runs as soon as it answers.
 */
public final class Database implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Database.class);

    private final HikariDataSource dataSource;
    private volatile boolean migrated;
    private volatile Thread migrator;

    public Database(String url, String user, String password, int maxPoolSize, long connectionTimeoutMillis) {
        HikariConfig cfg = new HikariConfig();
        cfg.setJdbcUrl(url);
        cfg.setUsername(user);
        cfg.setPassword(password == null || password.isEmpty() ? null : password);
        cfg.setMaximumPoolSize(maxPoolSize);
        cfg.setMinimumIdle(Math.min(2, maxPoolSize));
        cfg.setConnectionTimeout(connectionTimeoutMillis);
        cfg.setValidationTimeout(Math.max(250, connectionTimeoutMillis / 2));
        cfg.setInitializationFailTimeout(-1);
        cfg.setPoolName("kaiser-db");
        // turns JDBC batches into multi-row INSERTs: one round trip per telemetry batch
        cfg.addDataSourceProperty("reWriteBatchedInserts", "true");
        cfg.addDataSourceProperty("connectTimeout", Long.toString(Math.max(1, connectionTimeoutMillis / 1000)));
        cfg.addDataSourceProperty("socketTimeout", "30");
        cfg.addDataSourceProperty("ApplicationName", "kaiser");
        this.dataSource = new HikariDataSource(cfg);
    }

    /** Migrates now if the database answers, otherwise keeps trying in the background. */
    public void start() {
        if (tryMigrate()) {
            return;
        }
        migrator = new Thread(() -> {
            long delay = 500;
            while (!migrated && !Thread.currentThread().isInterrupted()) {
                try {
                    Thread.sleep(delay);
                } catch (InterruptedException e) {
                    return;
                }
                delay = Math.min(delay * 2, 5000);
                tryMigrate();
            }
        }, "db-migrate");
        migrator.setDaemon(true);
        migrator.start();
    }

    private synchronized boolean tryMigrate() {
        if (migrated) {
            return true;
        }
        try {
            Flyway.configure().dataSource(dataSource).locations("classpath:db/migration").load().migrate();
            migrated = true;
            LOG.info("Database schema is up to date");
            return true;
        } catch (Exception e) {
            LOG.warn("Database not ready yet ({}); the server keeps running and retries", rootMessage(e));
            return false;
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getMessage();
    }

    public DataSource dataSource() {
        return dataSource;
    }

    public boolean migrated() {
        return migrated;
    }

    /** True when the schema exists and a trivial query answers. */
    public boolean reachable() {
        if (!migrated) {
            return false;
        }
        try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
            s.setQueryTimeout(2);
            try (ResultSet rs = s.executeQuery("SELECT 1")) {
                return rs.next();
            }
        } catch (Exception e) {
            return false;
        }
    }

    @Override
    public void close() {
        if (migrator != null) {
            migrator.interrupt();
        }
        dataSource.close();
    }
}
