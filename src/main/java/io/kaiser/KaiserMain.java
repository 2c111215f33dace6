package io.kaiser;

import org.apache.camel.main.Main;

public final class KaiserMain {
    /**
     * Where the configuration comes from, highest precedence first: an application.properties in the working
     * directory (a container mounts one at /app/application.properties), then the jar's copy. Camel takes a key from
     * the first location that has it; environment variables and -D system properties still win over both.
     */
    public static final String PROPERTIES_LOCATIONS =
            "file:application.properties;optional=true,classpath:application.properties;optional=true";

    private KaiserMain() {
    }

    public static void main(String[] args) throws Exception {
        System.exit(newMain().run(args));
    }

    /**
     * The Camel Main every run mode uses (plain, embedded). Callers may keep the instance to stop it
     * ({@link Main#completed()}) and run it with {@link Main#run(String[])}.
     */
    public static Main newMain() {
        Main main = new Main();
        main.setDefaultPropertyPlaceholderLocation(PROPERTIES_LOCATIONS);
        return main;
    }
}
