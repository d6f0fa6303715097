package dev.durabletopic.clientcheck;

import java.io.IOException;
import java.util.Map;
import java.util.Properties;
import org.springframework.boot.autoconfigure.kafka.KafkaProperties;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.MapConfigurationPropertySource;

/**
 * A Spring Boot profile (`durabletopic client-config --format spring`) bound the way a Spring Boot application
 * binds its `spring.kafka.*` properties, into the client configuration Spring Boot's producer and consumer
 * factories are built with.
 */
final class SpringProfile {
    private final KafkaProperties kafka;

    SpringProfile(Properties lines) {
        this.kafka = new Binder(new MapConfigurationPropertySource(lines))
            .bind("spring.kafka", KafkaProperties.class)
            .get();
    }

    static SpringProfile load(java.nio.file.Path file, String bootstrap, String group) throws IOException {
        Properties lines = ProfileCheck.load(file);
        lines.put("spring.kafka.bootstrap-servers", bootstrap);  // the application's own lines
        if (group != null) {
            lines.put("spring.kafka.consumer.group-id", group);
        }
        return new SpringProfile(lines);
    }

    Properties producer() {
        return asProperties(kafka.buildProducerProperties(null));
    }

    Properties consumer() {
        return asProperties(kafka.buildConsumerProperties(null));
    }

    String ackMode() {
        return String.valueOf(kafka.getListener().getAckMode());
    }

    private static Properties asProperties(Map<String, Object> built) {
        Properties props = new Properties();
        props.putAll(built);
        return props;
    }
}
