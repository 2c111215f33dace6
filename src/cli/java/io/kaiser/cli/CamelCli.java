package io.kaiser.cli;

import org.apache.camel.dsl.jbang.core.commands.CamelJBangMain;

/** The Camel CLI ({@code camel run ...}, Camel JBang 4.17.0) with Kaiser's classes on the classpath. */
public final class CamelCli {
    private CamelCli() {
    }

    public static void main(String[] args) {
        CamelJBangMain.run(args);
    }
}
