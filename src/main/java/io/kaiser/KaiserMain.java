package io.kaiser;

import org.apache.camel.main.Main;

public final class KaiserMain {
    private KaiserMain() {
    }

    public static void main(String[] args) throws Exception {
        System.exit(newMain().run(args));
    }

    /**
     * The Camel Main every run mode uses (plain, embedded): application.properties from the classpath and from
     * the working directory, overridden by environment variables and -D system properties. Callers may keep the instance to stop it
     * ({@link Main#completed()}) and run it with {@link Main#run(String[])}.
     */
    public static Main newMain() {
        Main main = new Main();
        // an application.properties in the working directory (a container mounts one at /app/application.properties)
        // before the jar's copy: Camel takes a key from the first location that has it; environment variables and
        // -D system properties still win over both
        main.setDefaultPropertyPlaceholderLocation(PROPERTIES_LOCATIONS);
        return main;
    }

    /** Where the configuration comes from, highest precedence first. */
    public static final String PROPERTIES_LOCATIONS =
            "file:application.properties;optional=true,classpath:application.properties;optional=true";
}
