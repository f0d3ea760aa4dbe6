package software.amazon.kinesis.multilang.config;

import java.util.function.Consumer;

import software.amazon.kinesis.coordinator.CoordinatorConfig;
import software.amazon.kinesis.coordinator.Scheduler;
import software.amazon.kinesis.processor.ShardRecordProcessorFactory;

/**
 * {@link MultiLangDaemonConfiguration#build} with a look at the CoordinatorConfig before the Scheduler is made
 * (the Scheduler copies its values in its constructor). In this package for the configuration's package-private
 * {@code resolvedConfiguration}, which {@code build} itself calls.
 */
public final class ResolvedSchedulers {
    private ResolvedSchedulers() {}

    public static Scheduler build(
            final MultiLangDaemonConfiguration configuration,
            final ShardRecordProcessorFactory processorFactory,
            final Consumer<CoordinatorConfig> adjustCoordinator) {
        final MultiLangDaemonConfiguration.ResolvedConfiguration resolved =
                configuration.resolvedConfiguration(processorFactory);
        adjustCoordinator.accept(resolved.getCoordinatorConfig());
        return resolved.build();
    }
}
