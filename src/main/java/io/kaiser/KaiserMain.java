package io.kaiser;

import org.apache.camel.main.Main;

public final class KaiserMain {
    private KaiserMain() {
    }

    public static void main(String[] args) throws Exception {
        System.exit(newMain().run(args));
    }

    /**
     * The Camel Main every run mode uses (plain, embedded): application.properties from the classpath,
     * overridden by environment variables and -D system properties. Callers may keep the instance to stop it
     * ({@link Main#completed()}) and run it with {@link Main#run(String[])}.
     */
    public static Main newMain() {
        return new Main();
    }
}
