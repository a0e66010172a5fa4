package dev.kaskade.compat.jvmapps;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A framework process (Streams app or Connect worker) running in its own JVM,
 * as a user would run it: `java -cp target/classes:DEPS MAIN ARGS`, log4j2 at
 * WARN into DIR/NAME.log, stdout+stderr into DIR/NAME.out. stop() sends
 * SIGTERM (Process.destroy), kill() sends SIGKILL (Process.destroyForcibly).
 */
final class ChildJvm {
    private static final List<Process> ALL = new ArrayList<>();

    static {
        // If the test JVM itself is stopped, don't leave framework JVMs behind.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            synchronized (ALL) {
                for (Process p : ALL) {
                    p.destroyForcibly();
                }
            }
        }));
    }

    final String name;
    final Path out;
    final Path log;
    private final Process process;

    private ChildJvm(String name, Path out, Path log, Process process) {
        this.name = name;
        this.out = out;
        this.log = log;
        this.process = process;
    }

    static String classpath() {
        String classes = System.getProperty("jvmapps.classes", "target/classes");
        String cpFile = System.getProperty("jvmapps.classpathFile", "target/runtime-classpath.txt");
        try {
            String deps = Files.readString(Path.of(cpFile)).trim();
            return classes + File.pathSeparator + deps;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the runtime classpath file " + cpFile
                    + " (run install.sh first)", e);
        }
    }

    /**
     * Starts MAIN in a new JVM. The log4j2 config is written next to the log
     * (root level from KASKADE_JVM_APPS_LOGLEVEL, default WARN).
     */
    static ChildJvm start(Path dir, String name, String heap, String mainClass, List<String> args)
            throws IOException {
        Path out = dir.resolve(name + ".out");
        Path log = dir.resolve(name + ".log");
        Path log4j = dir.resolve(name + "-log4j2.properties");
        String level = System.getenv().getOrDefault("KASKADE_JVM_APPS_LOGLEVEL", "WARN");
        Files.writeString(log4j, String.join("\n",
                "status = warn",
                "appender.file.type = File",
                "appender.file.name = file",
                "appender.file.append = true",
                "appender.file.fileName = " + log,
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = [%d] %p [%t] %m (%c)%n",
                "rootLogger.level = " + level,
                "rootLogger.appenderRef.file.ref = file",
                ""));
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx" + heap);
        cmd.add("-XX:+UseSerialGC");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-Djava.awt.headless=true");
        cmd.add("-Dlog4j2.configurationFile=" + log4j);
        cmd.add("-cp");
        cmd.add(classpath());
        cmd.add(mainClass);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(out.toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        Process p = pb.start();
        synchronized (ALL) {
            ALL.add(p);
        }
        Util.log("started " + name + " (pid " + p.pid() + "): " + mainClass + " " + String.join(" ", args));
        return new ChildJvm(name, out, log, p);
    }

    long pid() {
        return process.pid();
    }

    boolean alive() {
        return process.isAlive();
    }

    /** The exit status, or null while it runs. */
    Integer exitCode() {
        return process.isAlive() ? null : process.exitValue();
    }

    /** SIGTERM, then waits up to waitSeconds; returns true if it exited. */
    boolean stop(int waitSeconds) throws InterruptedException {
        Util.log("SIGTERM " + name + " (pid " + process.pid() + ")");
        process.destroy();
        boolean exited = process.waitFor(waitSeconds, TimeUnit.SECONDS);
        if (exited) {
            Util.log(name + " exited with status " + process.exitValue());
        }
        return exited;
    }

    /** SIGKILL and wait for it to be gone. */
    void kill() throws InterruptedException {
        if (!process.isAlive()) {
            return;
        }
        Util.log("SIGKILL " + name + " (pid " + process.pid() + ")");
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** The last lines of the process's stdout and log, for failure messages. */
    String tails(int lines) {
        return "\n----- tail of " + out + " -----\n" + Util.tail(out, lines)
                + "\n----- tail of " + log + " -----\n" + Util.tail(log, lines)
                + "\n-----";
    }

    String describe() {
        return name + " (pid " + process.pid() + ", " + (alive() ? "running" : "exited " + exitCode()) + ")";
    }

    static String readOut(Path p) {
        try {
            return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            return "(cannot read " + p + ": " + e + ")";
        }
    }
}
