package io.kaiser;

import org.apache.camel.main.Main;

public final class KaiserMain {
    public static void main(String[] args) throws Exception {
        Main main = new Main();
        System.exit(main.run(args));
    }
}
