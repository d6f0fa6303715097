package dev.durabletopic.springcheck;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.CommandLineRunner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.annotation.Bean;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.support.Acknowledgment;
import org.springframework.kafka.support.SendResult;
import org.springframework.stereotype.Component;

/**
 * A Spring Boot application configured only by the Spring client profile (`durabletopic client-config --format
 * spring`, imported with spring.config.import) and the application's own lines (bootstrap servers, serializers come
 * from Spring Boot's defaults). It sends check.count records with KafkaTemplate, every send completed by a
 * whenComplete that counts failures, and reads them with a listener that acknowledges each record after
 * processing it. Prints `key=value` findings on stdout and exits.
 */
@SpringBootApplication
public class SpringCheckApp {
    private static final Logger log = LoggerFactory.getLogger(SpringCheckApp.class);

    public static void main(String[] args) {
        System.exit(SpringApplication.exit(SpringApplication.run(SpringCheckApp.class, args)));
    }

    @Component
    static class Listener {
        final Set<String> processed = ConcurrentHashMap.newKeySet();
        final AtomicInteger records = new AtomicInteger();
        volatile CountDownLatch all = new CountDownLatch(1);

        @KafkaListener(topics = "${check.topic}", groupId = "${check.group}")
        void onRecord(ConsumerRecord<String, String> record, Acknowledgment ack) {
            processed.add(record.key());  // the work
            records.incrementAndGet();
            ack.acknowledge();  // after the work
            all.countDown();
        }
    }

    @Bean
    CommandLineRunner check(
        KafkaTemplate<String, String> kafka,
        Listener listener,
        @Value("${check.topic}") String topic,
        @Value("${check.count}") int count
    ) {
        return args -> {
            listener.all = new CountDownLatch(count);
            AtomicInteger acknowledged = new AtomicInteger();
            AtomicInteger failed = new AtomicInteger();
            List<CompletableFuture<SendResult<String, String>>> sends = new ArrayList<>();
            for (int n = 0; n < count; n++) {
                String key = "k" + n;
                sends.add(kafka.send(topic, key, "v" + n).whenComplete((result, error) -> {
                    if (error == null) {
                        acknowledged.incrementAndGet();
                    } else {
                        log.error("record {} not written: {}", key, error.toString());
                        failed.incrementAndGet();
                    }
                }));
            }
            CompletableFuture.allOf(sends.toArray(CompletableFuture[]::new))
                .exceptionally(error -> null)
                .get(Duration.ofSeconds(60).toMillis(), TimeUnit.MILLISECONDS);
            boolean read = listener.all.await(60, TimeUnit.SECONDS);
            System.out.println("acknowledged=" + acknowledged.get());
            System.out.println("failed=" + failed.get());
            System.out.println("all_read=" + read);
            System.out.println("consumed=" + listener.records.get());
            System.out.println("distinct=" + listener.processed.size());
        };
    }
}
