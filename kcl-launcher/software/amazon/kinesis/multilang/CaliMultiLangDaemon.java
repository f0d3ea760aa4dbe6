package software.amazon.kinesis.multilang;

import java.io.IOException;
import java.util.Properties;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.kinesis.coordinator.Scheduler;
import software.amazon.kinesis.multilang.config.KinesisClientLibConfigurator;
import software.amazon.kinesis.multilang.config.MultiLangDaemonConfiguration;
import software.amazon.kinesis.multilang.config.ResolvedSchedulers;

/**
 * The KCL 3.1.3 MultiLangDaemon with one more property in its properties file: {@value #DISPATCH_POLL_INTERVAL},
 * CoordinatorConfig's pause between two scheduler passes (the KCL's default 1000 ms; not a multilang property in
 * 3.1.3). A shard consumer moves one state per pass (create, initialize, processing, subscribe), so on a start the
 * pause is paid three times before the first records reach the processor (bench/RESULTS.md, 8b and 8d).
 *
 * <p>Everything else is the MultiLangDaemon's own code: this class sits in its package to override the two steps
 * that read the properties and build the Scheduler, and {@link #main} is its {@code main} with this class in its
 * place. The KCL itself ignores the extra property (its configurator skips names it has no setter for).
 */
public final class CaliMultiLangDaemon extends MultiLangDaemon {
    static final String DISPATCH_POLL_INTERVAL = "shardConsumerDispatchPollIntervalMillis";
    private static final int CONFIGURATION_ERROR = 2;
    private static final Logger LOG = LoggerFactory.getLogger(CaliMultiLangDaemon.class);

    /** A value of ours that cannot be used: one sentence, no stack trace. */
    static final class BadProperty extends RuntimeException {
        private static final long serialVersionUID = 1L;

        BadProperty(final String message) {
            super(message);
        }
    }

    private Long dispatchPollIntervalMillis; // null: not in the file, the KCL's default

    /** The property's value in milliseconds, null when it is absent or empty. */
    static Long dispatchPollIntervalMillis(final Properties properties) {
        final String text = properties.getProperty(DISPATCH_POLL_INTERVAL, "").trim();
        if (text.isEmpty()) {
            return null;
        }
        try {
            final long millis = Long.parseLong(text);
            if (millis > 0) {
                return millis;
            }
        } catch (NumberFormatException e) {
            // the sentence below
        }
        throw new BadProperty(DISPATCH_POLL_INTERVAL + " must be a whole number of milliseconds above 0, not '"
                + text + "'");
    }

    @Override
    MultiLangDaemonConfig buildMultiLangDaemonConfig(final String propertiesFile) {
        final KinesisClientLibConfigurator configurator = new KinesisClientLibConfigurator() {
            @Override
            public MultiLangDaemonConfiguration getConfiguration(final Properties properties) {
                dispatchPollIntervalMillis = dispatchPollIntervalMillis(properties);
                return super.getConfiguration(properties);
            }
        };
        try {
            return new MultiLangDaemonConfig(
                    propertiesFile, Thread.currentThread().getContextClassLoader(), configurator);
        } catch (IOException e) {
            throw new RuntimeException("Error while reading properties file: " + e.getMessage());
        }
    }

    @Override
    Scheduler buildScheduler(final MultiLangDaemonConfig config) {
        final Scheduler scheduler = ResolvedSchedulers.build(
                config.getMultiLangDaemonConfiguration(), config.getRecordProcessorFactory(), coordinator -> {
                    if (dispatchPollIntervalMillis != null) {
                        coordinator.shardConsumerDispatchPollIntervalMillis(dispatchPollIntervalMillis);
                    }
                });
        LOG.info("Scheduler passes every {} ms ({})", scheduler.shardConsumerDispatchPollIntervalMillis(),
                dispatchPollIntervalMillis == null ? "the KCL's default" : DISPATCH_POLL_INTERVAL);
        return scheduler;
    }

    /** MultiLangDaemon.main (3.1.3) with this class; a bad value of ours exits 2 with one sentence. */
    public static void main(final String[] args) {
        int exitCode = 1;
        final CaliMultiLangDaemon daemon = new CaliMultiLangDaemon();
        final MultiLangDaemonArguments arguments = new MultiLangDaemonArguments();
        final com.beust.jcommander.JCommander jCommander = daemon.buildJCommanderAndParseArgs(arguments, args);
        try {
            final String propertiesFileName = daemon.validateAndGetPropertiesFileName(arguments);
            daemon.configureLogging(arguments.logConfiguration);
            final MultiLangDaemonConfig config = daemon.buildMultiLangDaemonConfig(propertiesFileName);

            final Scheduler scheduler = daemon.buildScheduler(config);
            final MultiLangRunner runner = new MultiLangRunner(scheduler);

            daemon.setupShutdownHook(Runtime.getRuntime(), runner, config);
            exitCode = daemon.submitRunnerAndWait(config, runner);
        } catch (BadProperty e) {
            System.err.println(e.getMessage());
            exitCode = CONFIGURATION_ERROR;
        } catch (Throwable t) {
            t.printStackTrace(System.err);
            daemon.printUsage(jCommander, t.getMessage());
            System.err.println("For more information, visit: https://github.com/awslabs/amazon-kinesis-client");
        }
        daemon.exit(exitCode);
    }
}
