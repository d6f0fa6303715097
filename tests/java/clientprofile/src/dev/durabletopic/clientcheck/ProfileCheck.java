package dev.durabletopic.clientcheck;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Runs the Java client with a client profile of `durabletopic client-config`, plus only what the application adds
 * (bootstrap servers, serializers, group id). FORMAT java: the profile is the client's properties; spring: the
 * profile is Spring Boot properties, and the client gets the configuration Spring Boot builds from them. Prints
 * its findings as `key=value` lines on stdout; the client's own log (slf4j-simple) goes to stderr.
 *
 * <pre>
 * produce FORMAT BOOTSTRAP TOPIC PROFILE COUNT
 * consume FORMAT BOOTSTRAP TOPIC PROFILE GROUP COUNT
 * construct PRODUCER_PROPERTIES CONSUMER_PROPERTIES EXTRA_KEY=VALUE   (builds both clients, connects nowhere)
 * </pre>
 */
public final class ProfileCheck {
    private ProfileCheck() {}

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "produce" -> produce(producerOf(args[1], Path.of(args[4]), args[2]), args[3], Integer.parseInt(args[5]));
            case "consume" -> consume(
                consumerOf(args[1], Path.of(args[4]), args[2], args[5]), args[3], Integer.parseInt(args[6]));
            case "construct" -> construct(Path.of(args[1]), Path.of(args[2]), args[3]);
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    static Properties load(Path file) throws IOException {
        Properties props = new Properties();
        try (Reader in = Files.newBufferedReader(file)) {
            props.load(in);
        }
        return props;
    }

    static Properties producerProps(Path profile, String bootstrap) throws IOException {
        Properties props = load(profile);
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return props;
    }

    static Properties consumerProps(Path profile, String bootstrap, String group) throws IOException {
        Properties props = load(profile);
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return props;
    }

    static Properties producerOf(String format, Path profile, String bootstrap) throws IOException {
        return switch (format) {
            case "java" -> producerProps(profile, bootstrap);
            case "spring" -> SpringProfile.load(profile, bootstrap, null).producer();
            default -> throw new IllegalArgumentException("unknown format " + format);
        };
    }

    static Properties consumerOf(String format, Path profile, String bootstrap, String group) throws IOException {
        switch (format) {
            case "java":
                return consumerProps(profile, bootstrap, group);
            case "spring":
                SpringProfile spring = SpringProfile.load(profile, bootstrap, group);
                System.out.println("ack_mode=" + spring.ackMode());
                return spring.consumer();
            default:
                throw new IllegalArgumentException("unknown format " + format);
        }
    }

    static void produce(Properties props, String topic, int count) throws Exception {
        AtomicInteger acknowledged = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int n = 0; n < count; n++) {
                producer.send(new ProducerRecord<>(topic, "k" + n, "v" + n), (metadata, error) -> {
                    if (error == null) {
                        acknowledged.incrementAndGet();
                    } else {
                        failed.incrementAndGet();
                        System.err.println("send failed: " + error);
                    }
                });
            }
            producer.flush();
        }
        System.out.println("acknowledged=" + acknowledged.get());
        System.out.println("failed=" + failed.get());
    }

    static void consume(Properties props, String topic, int count) throws Exception {
        Set<String> processed = new HashSet<>();
        int records = 0;
        Map<TopicPartition, OffsetAndMetadata> committed = new HashMap<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (processed.size() < count && System.nanoTime() < deadline) {
                ConsumerRecords<String, String> batch = consumer.poll(Duration.ofMillis(500));
                Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
                for (ConsumerRecord<String, String> record : batch) {
                    processed.add(record.key());
                    records++;
                    done.put(new TopicPartition(record.topic(), record.partition()),
                             new OffsetAndMetadata(record.offset() + 1));
                }
                if (!done.isEmpty()) {
                    consumer.commitSync(done);  // after processing: exactly the offsets processed
                    committed.putAll(done);
                }
            }
            Map<TopicPartition, Long> end = consumer.endOffsets(committed.keySet());
            Map<TopicPartition, OffsetAndMetadata> stored = consumer.committed(committed.keySet());
            long storedSum = stored.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            long endSum = end.values().stream().mapToLong(Long::longValue).sum();
            System.out.println("consumed=" + records);
            System.out.println("distinct=" + processed.size());
            System.out.println("committed=" + storedSum);
            System.out.println("end=" + endSum);
        }
        // The same group again: what was committed is not read a second time.
        int again = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic));
            long until = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (System.nanoTime() < until) {
                again += consumer.poll(Duration.ofMillis(500)).count();
            }
        }
        System.out.println("read_again=" + again);
    }

    static void construct(Path producerProfile, Path consumerProfile, String extra) throws Exception {
        String[] pair = extra.split("=", 2);
        Properties producer = producerProps(producerProfile, "127.0.0.1:1");
        producer.put(pair[0], pair[1]);
        Properties consumer = consumerProps(consumerProfile, "127.0.0.1:1", "construct-only");
        consumer.put(pair[0], pair[1]);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producer);
             KafkaConsumer<String, String> c = new KafkaConsumer<>(consumer)) {
            System.err.println("built " + p.getClass().getSimpleName() + " and " + c.getClass().getSimpleName());
        }
        System.out.println("constructed=2");
    }
}
