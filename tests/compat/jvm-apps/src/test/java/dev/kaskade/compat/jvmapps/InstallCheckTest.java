package dev.kaskade.compat.jvmapps;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

/**
 * Run by install.sh only (run.sh selects the broker tests): checks that the
 * framework JVMs' classpath and the connect-file plugin directory are in place.
 */
class InstallCheckTest {
    @Test
    void frameworkClasspathAndConnectorPluginArePresent() {
        String cp = ChildJvm.classpath();
        for (String entry : cp.split(File.pathSeparator)) {
            assertTrue(Files.exists(Path.of(entry)), "classpath entry missing: " + entry);
        }
        assertTrue(cp.contains("kafka-streams-4.4.0.jar"), "kafka-streams 4.4.0 not on the classpath");
        assertTrue(cp.contains("connect-runtime-4.4.0.jar"), "connect-runtime 4.4.0 not on the classpath");
        assertTrue(Files.exists(Path.of(ChildJvm.classpath().split(File.pathSeparator)[0],
                "dev/kaskade/compat/jvmapps/WordCountApp.class")), "WordCountApp not compiled");
        Path plugin = Path.of(System.getProperty("jvmapps.pluginPath", "target/plugins"), "connect-file-4.3.1");
        assertTrue(Files.exists(plugin.resolve("connect-file-4.3.1.jar")), "connect-file plugin missing in " + plugin);
        assertTrue(Files.exists(plugin.resolve("kafka-clients-4.3.1.jar")), "kafka-clients 4.3.1 missing in " + plugin);
    }
}
