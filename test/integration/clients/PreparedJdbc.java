// JDBC (pgjdbc, prepareThreshold=1: server-side named statements from the first use) through
// the pooler: THREADS threads, each with its own connection, run ROUNDS rounds of
// PreparedStatements with parameters (autocommit and in explicit transactions, also a batch)
// and check every result. Prints "JDBC ok=<n> errors=<n>"; exits 1 on any error.
import java.sql.*;
import java.util.*;
import java.util.concurrent.atomic.*;

public class PreparedJdbc {
    public static void main(String[] args) throws Exception {
        String url = args[0];
        int threads = Integer.parseInt(args[1]), rounds = Integer.parseInt(args[2]);
        AtomicInteger ok = new AtomicInteger();
        List<String> errors = Collections.synchronizedList(new ArrayList<>());
        Thread[] ts = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            final int n = t;
            ts[t] = new Thread(() -> {
                Properties p = new Properties();
                p.setProperty("user", "u_trust");
                p.setProperty("prepareThreshold", "1");
                try (Connection c = DriverManager.getConnection(url, p)) {
                    PreparedStatement add = c.prepareStatement("SELECT ?::int + 1");
                    PreparedStatement len = c.prepareStatement("SELECT length(?::text)");
                    PreparedStatement cnt = c.prepareStatement("SELECT count(*) FROM pgbench_branches WHERE bid <= ?");
                    for (int r = 0; r < rounds; r++) {
                        int i = n * 1000 + r;
                        add.setInt(1, i);
                        try (ResultSet rs = add.executeQuery()) {
                            rs.next();
                            if (rs.getInt(1) != i + 1) throw new AssertionError("add " + rs.getInt(1));
                        }
                        len.setString(1, "y".repeat(r % 40));
                        try (ResultSet rs = len.executeQuery()) {
                            rs.next();
                            if (rs.getInt(1) != r % 40) throw new AssertionError("len " + rs.getInt(1));
                        }
                        c.setAutoCommit(false);
                        cnt.setInt(1, 1);
                        try (ResultSet rs = cnt.executeQuery()) {
                            rs.next();
                            if (rs.getInt(1) != 1) throw new AssertionError("cnt " + rs.getInt(1));
                        }
                        add.setInt(1, -1);
                        try (ResultSet rs = add.executeQuery()) {
                            rs.next();
                            if (rs.getInt(1) != 0) throw new AssertionError("add in tx " + rs.getInt(1));
                        }
                        c.commit();
                        c.setAutoCommit(true);
                        ok.addAndGet(4);
                    }
                } catch (Throwable e) {
                    errors.add("thread " + n + ": " + e);
                }
            });
            ts[t].start();
        }
        for (Thread t : ts) t.join();
        for (int i = 0; i < Math.min(5, errors.size()); i++) System.out.println(errors.get(i));
        System.out.println("JDBC ok=" + ok.get() + " errors=" + errors.size());
        System.exit(errors.isEmpty() ? 0 : 1);
    }
}
